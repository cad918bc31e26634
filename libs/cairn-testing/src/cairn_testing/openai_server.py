"""A real OpenAI-compatible chat server as a process, for the tests of Cairn's HTTP inference backend.

`transformers serve` (shipped in `transformers`; it needs FastAPI, uvicorn and `openai`, all in the
dev requirements) serves one local model folder offline: `POST /v1/chat/completions` (streamed or
not, usage in the response or the last chunk), `GET /v1/models` and `GET /health`. It has no LoRA
endpoints. It preloads the model before it listens, so `/health` answering means it can generate.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cairn_localstack.process import ProcessManager
from cairn_testing.processes import free_port

__all__ = ["OpenAIServer", "transformers_serve"]

PROCESS_NAME = "transformers-serve"
"""The name the server runs under in its `ProcessManager` run folder (its log: `logs/<name>.log`)."""


@dataclass(frozen=True)
class OpenAIServer:
    """A running OpenAI-compatible server."""

    base_url: str
    """`http://127.0.0.1:<port>`, without a trailing slash."""
    model: str
    """The served model's id as `GET /v1/models` lists it: what a request's `model` must name."""
    log_path: Path
    """Where its standard output and error go."""


def serve_command() -> str:
    """The `transformers` command of the running Python environment (else the one on PATH)."""
    beside = Path(sys.executable).with_name("transformers")
    if beside.is_file():
        return str(beside)
    found = shutil.which("transformers")
    if found is None:
        raise RuntimeError("no `transformers` command: install transformers (with FastAPI and uvicorn)")
    return found


@contextmanager
def transformers_serve(
    model_dir: Path,
    run_dir: Path,
    *,
    port: int | None = None,
    startup_timeout: float = 180.0,
    env: Mapping[str, str] | None = None,
) -> Iterator[OpenAIServer]:
    """Serve the model folder `model_dir` with `transformers serve` on 127.0.0.1 (a free port unless
    `port`), offline (`HF_HUB_OFFLINE=1`), `env` on top of this environment; yield it once `/health`
    answers, and stop it and its children on exit.

    `run_dir` holds its PID record and log. Raises RuntimeError with the end of its log when it
    exits while starting, TimeoutError when it does not answer within `startup_timeout` s.
    """
    pm = ProcessManager(run_dir)
    port = port or free_port()
    base_url = f"http://127.0.0.1:{port}"
    argv = [serve_command(), "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port)]
    child_env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        **(env or {}),
    }
    pm.start(PROCESS_NAME, argv, env=child_env)
    try:
        _wait_healthy(pm, base_url, startup_timeout)
        yield OpenAIServer(base_url, _served_model(base_url), pm.info(PROCESS_NAME).log_path)
    finally:
        pm.stop(PROCESS_NAME, timeout=10)


def _wait_healthy(pm: ProcessManager, base_url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if not pm.is_running(PROCESS_NAME):
            raise RuntimeError(f"transformers serve exited while starting:\n{pm.tail(PROCESS_NAME, 40)}")
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:  # not listening yet (URLError is one)
            pass
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"transformers serve did not answer {base_url}/health within {timeout:.0f} s:\n"
                f"{pm.tail(PROCESS_NAME, 40)}"
            )
        time.sleep(0.3)


def _served_model(base_url: str) -> str:
    with urllib.request.urlopen(f"{base_url}/v1/models", timeout=10) as response:
        listed = json.load(response)
    return str(listed["data"][0]["id"])
