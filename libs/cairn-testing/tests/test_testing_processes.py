"""Services as processes: entry points, environment, start / wait-ready / stop, the `cairn` command."""

from __future__ import annotations

import json
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from cairn_bus.contract import ENTRY_POINT_GROUP
from cairn_localstack.process import ProcessManager
from cairn_testing import processes
from cairn_testing.processes import (
    LOCAL_CONSUMER_ENV,
    ServiceProcesses,
    run_cairn,
    service_env,
    service_modules,
)

# fake services: `python -m fake_<kind>` from a folder on PYTHONPATH
FAKES = {
    "ready": (
        "import json, os, time\n"
        "print(json.dumps({'event': 'service ready', 'service': os.environ['CAIRN_SERVICE_NAME'],\n"
        "    'group': os.environ['CAIRN_KAFKA_GROUP_ID'], 'extra': os.environ.get('FAKE_EXTRA'),\n"
        "    'metrics_port': os.environ.get('CAIRN_METRICS_PORT'),\n"
        "    'http_enabled': os.environ.get('CAIRN_HTTP_ENABLED')}), flush=True)\n"
        "time.sleep(120)\n"
    ),
    "crash": "print('cannot start: no database', flush=True)\nraise SystemExit(3)\n",
    "silent": "import time\ntime.sleep(120)\n",
}


@pytest.fixture
def fakes(tmp_path: Path) -> ServiceProcesses:
    """ServiceProcesses over the fake services `ready`, `crash` and `silent`."""
    code = tmp_path / "code"
    for kind, text in FAKES.items():
        (code / f"fake_{kind}").mkdir(parents=True)
        (code / f"fake_{kind}" / "__main__.py").write_text(text)
    return ServiceProcesses(
        ProcessManager(tmp_path / "run"),
        {**os.environ, "PYTHONPATH": str(code)},
        {kind: f"group-{kind}" for kind in FAKES},
        {kind: f"fake_{kind}" for kind in FAKES},
        cwd=tmp_path,
    )


def test_service_modules_are_the_packages_of_the_installed_services() -> None:
    names = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    modules = service_modules()
    assert set(modules) == names
    assert modules["prompt-store"] == "cairn_prompt_store"
    assert all(module.isidentifier() and module.startswith("cairn_") for module in modules.values())


def test_service_env_points_at_the_database_with_fast_local_consumers() -> None:
    stack = {"CAIRN_KAFKA_BOOTSTRAP": "127.0.0.1:1", "CAIRN_POSTGRES_DSN": "postgresql://stack/main"}
    env = service_env(stack, "postgresql://stack/own")
    assert env["CAIRN_KAFKA_BOOTSTRAP"] == "127.0.0.1:1"
    assert env["CAIRN_POSTGRES_DSN"] == "postgresql://stack/own"
    assert LOCAL_CONSUMER_ENV.items() <= env.items()
    assert env["CAIRN_LOG_FORMAT"] == "json"
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["PATH"] == os.environ["PATH"]


def test_running_starts_each_service_in_its_group_and_stops_them_all(fakes: ServiceProcesses) -> None:
    with fakes.running(["ready"], {"ready": {"FAKE_EXTRA": "yes"}}) as started:
        assert started is fakes
        assert fakes.pm.is_running("ready")
        log = fakes.log("ready")
        assert '"service": "ready"' in log
        assert '"group": "group-ready"' in log
        assert '"extra": "yes"' in log
    assert not fakes.pm.is_running("ready")


def ready_line(fakes: ServiceProcesses, name: str) -> dict[str, str | None]:
    line = next(x for x in fakes.log(name).splitlines() if "service ready" in x)
    return dict(json.loads(line))


def test_replicas_run_as_members_of_one_group_each_on_its_own_metrics_port(fakes: ServiceProcesses) -> None:
    extra = {"ready": {"FAKE_EXTRA": "yes", "CAIRN_METRICS_PORT": "18001"}}
    with fakes.running(["ready"], extra, replicas={"ready": 3}):
        assert fakes.members("ready") == ["ready", "ready#2", "ready#3"]
        lines = {name: ready_line(fakes, name) for name in fakes.members("ready")}
        assert {line["service"] for line in lines.values()} == {"ready"}
        assert {line["group"] for line in lines.values()} == {"group-ready"}
        assert {line["extra"] for line in lines.values()} == {"yes"}
        ports = [line["metrics_port"] for line in lines.values()]
        assert ports[0] == "18001"
        assert len(set(ports)) == 3
        assert fakes.metrics_ports == {name: int(str(line["metrics_port"])) for name, line in lines.items()}
        assert [line["http_enabled"] for line in lines.values()] == [None, "false", "false"]
        fakes.stop("ready#2")
        assert fakes.members("ready") == ["ready", "ready#3"]
        fakes.start("ready#2", {"CAIRN_METRICS_PORT": "18002"})  # a member's own env wins
        fakes.wait_ready(["ready#2"])  # what the new start logged, not the first start's line
        last = [x for x in fakes.log("ready#2").splitlines() if "service ready" in x][-1]
        assert json.loads(last)["metrics_port"] == "18002"
        assert fakes.metrics_ports["ready#2"] == 18002
    assert fakes.members("ready") == []


def test_a_service_that_exits_while_starting_fails_with_its_log(fakes: ServiceProcesses) -> None:
    with (
        pytest.raises(RuntimeError, match="crash exited while starting") as failed,
        fakes.running(["ready", "crash"]),
    ):
        pytest.fail("running yielded although a service exited")
    assert "cannot start: no database" in str(failed.value)
    assert not fakes.pm.is_running("ready")


def test_a_service_that_never_says_ready_times_out(fakes: ServiceProcesses) -> None:
    fakes.start("silent")
    try:
        with pytest.raises(TimeoutError, match="not ready after 1s"):
            fakes.wait_ready(["silent"], timeout=1.0)
    finally:
        fakes.stop("silent")
    assert not fakes.pm.is_running("silent")


def test_run_cairn_returns_the_output_or_raises_with_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(processes, "CAIRN", sys.executable)
    env = dict(os.environ)
    assert run_cairn(env, "-c", "import os; print(os.getcwd())", cwd=tmp_path).strip() == str(tmp_path)
    with pytest.raises(RuntimeError, match=r"failed \(3\):\nout\n\nerr"):
        run_cairn(env, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)")
