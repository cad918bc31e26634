"""The LiteLLM proxy as a comparison for the pipeline benchmark: installed in a virtual env of its own
(created once under the git-ignored stack folder, reused while its stamp names the same version),
configured with one model in front of the instant stub (`litellm_stub.py`), and run with the stub as
two recorded processes that are always stopped (process group and descendants) when the block ends.

Nothing reaches for the network: no database, telemetry off (`LITELLM_TELEMETRY_DISABLED` and
`telemetry: false`), the price map shipped in the package (`LITELLM_LOCAL_MODEL_COST_MAP`), and a
model name that map knows (an unknown one costs the proxy extra CPU in warnings).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cairn_localstack.process import ProcessManager

REPO = Path(__file__).resolve().parents[1]
LITELLM_VERSION = "1.108.7"
REQUIREMENT = f"litellm[proxy]=={LITELLM_VERSION}"
BENCH_DIR = REPO / ".cairn" / "bench"
VENV = BENCH_DIR / "litellm-venv"
STAMP = VENV / ".cairn-litellm-installed"
RUN_DIR = BENCH_DIR / "litellm-run"
STUB = Path(__file__).with_name("litellm_stub.py")
MODEL = "gpt-4o-mini"
"""The model name clients ask for: one the proxy's price list knows, so it costs no warnings."""
STUB_NAME, PROXY_NAME = "litellm-stub", "litellm-proxy"


def ensure_venv(python: str = sys.executable) -> Path:
    """The `litellm` command of the benchmark's own virtual env, installing it first unless its stamp
    already names `REQUIREMENT`; pip's output is printed as it comes."""
    litellm = VENV / "bin" / "litellm"
    if litellm.exists() and STAMP.exists() and STAMP.read_text().strip() == REQUIREMENT:
        return litellm
    started = time.monotonic()
    if not (VENV / "bin" / "python").exists():
        print(f"litellm: creating the virtual env {VENV.relative_to(REPO)} ...", flush=True)
        VENV.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([python, "-m", "venv", str(VENV)], check=True)
    print(f"litellm: installing {REQUIREMENT} into it (once; a few minutes) ...", flush=True)
    STAMP.unlink(missing_ok=True)
    argv = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    argv += ["--progress-bar", "off", REQUIREMENT]
    tail: list[str] = []
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as pip:
        assert pip.stdout is not None
        for line in pip.stdout:
            tail = [*tail[-39:], line.rstrip()]
            if line.startswith(("Collecting", "Installing", "Successfully", "ERROR")):
                print(f"  pip: {line.rstrip()}", flush=True)
    if pip.returncode != 0 or not litellm.exists():
        print("\n".join(f"  pip: {line}" for line in tail), flush=True)
        raise RuntimeError(f"installing {REQUIREMENT} failed (pip exit status {pip.returncode})")
    STAMP.write_text(REQUIREMENT + "\n")
    print(f"litellm: installed in {time.monotonic() - started:.0f} s", flush=True)
    return litellm


def proxy_config(folder: Path, stub_port: int, master_key: str) -> Path:
    """A proxy config (JSON is YAML) with `MODEL` served by the stub on `stub_port`."""
    config = {
        "model_list": [
            {
                "model_name": MODEL,
                "litellm_params": {
                    "model": f"openai/{MODEL}",
                    "api_base": f"http://127.0.0.1:{stub_port}/v1",
                    "api_key": "stub-needs-no-key",
                },
            }
        ],
        "litellm_settings": {"telemetry": False},
        "general_settings": {"master_key": master_key},
    }
    path = folder / "litellm-config.yaml"
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def proxy_env() -> dict[str, str]:
    """The environment of the proxy: no database, no telemetry, the local price map, no HTTP proxy."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "LITELLM_MASTER_KEY") and not k.lower().endswith("_proxy")
    }
    env.update(
        {
            "LITELLM_TELEMETRY_DISABLED": "true",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@dataclass(frozen=True)
class Proxy:
    """The running proxy and stub: their PIDs and where to reach them."""

    proxy_pid: int
    stub_pid: int
    proxy_url: str
    stub_url: str


def _get(url: str, timeout: float = 2.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return bytes(response.read())


def _wait_ready(pm: ProcessManager, name: str, url: str, timeout_s: float) -> float:
    """Seconds until `url` answers; raises with the log's tail when `name` exits or time runs out."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if pm.pid(name) is None:
            raise RuntimeError(f"{name} exited while starting:\n{pm.tail(name, 30)}")
        try:
            _get(url)
            return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.25)
    raise RuntimeError(f"{name} not ready after {timeout_s:.0f} s:\n{pm.tail(name, 30)}")


@contextmanager
def running(
    litellm: Path, stub_port: int, proxy_port: int, master_key: str, workers: int = 1, ready_s: float = 240
) -> Iterator[Proxy]:
    """The stub and the proxy in front of it, ready; both stopped (process group and descendants) when
    the block ends, whatever ends it. Leftovers recorded by an earlier run that died are stopped first."""
    pm = ProcessManager(RUN_DIR)
    for name in (PROXY_NAME, STUB_NAME):
        pm.stop(name)
    try:
        stub_pid = pm.start(
            STUB_NAME, [sys.executable, str(STUB), "--port", str(stub_port)], env=proxy_env(), cwd=REPO
        )
        stub_url = f"http://127.0.0.1:{stub_port}"
        _wait_ready(pm, STUB_NAME, f"{stub_url}/stats", 30)
        config = proxy_config(RUN_DIR, stub_port, master_key)
        argv = [str(litellm), "--config", str(config), "--host", "127.0.0.1", "--port", str(proxy_port)]
        proxy_pid = pm.start(PROXY_NAME, [*argv, "--num_workers", str(workers)], env=proxy_env(), cwd=RUN_DIR)
        proxy_url = f"http://127.0.0.1:{proxy_port}"
        took = _wait_ready(pm, PROXY_NAME, f"{proxy_url}/health/liveliness", ready_s)
        print(f"  litellm proxy {LITELLM_VERSION} ready in {took:.1f} s (pid {proxy_pid})", flush=True)
        yield Proxy(proxy_pid, stub_pid, proxy_url, stub_url)
    finally:
        for name in (PROXY_NAME, STUB_NAME):
            pm.stop(name)


def stub_completions(stub_url: str) -> int:
    """How many chat completions the stub has answered."""
    return int(json.loads(_get(f"{stub_url}/stats"))["chat_completions"])
