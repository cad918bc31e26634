"""`cairn services` with replicas: member names, their ports and environment, up/status/logs/down."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import typer
from typer.testing import CliRunner

from cairn_cli import services_cmd
from cairn_cli.services_cmd import manager, parse_replicas
from cairn_localstack.config import (
    MAX_REPLICAS,
    PROFILE_DEFAULTS,
    SERVICE_METRICS_OFFSETS,
    StackConfig,
    member_name,
    split_member,
)

FAKE_SERVICE = (
    "import json, os, time\n"
    "print(json.dumps({'event': 'service ready', 'service': os.environ['CAIRN_SERVICE_NAME'],\n"
    "    'group': os.environ.get('CAIRN_KAFKA_GROUP_ID'), 'metrics_port': os.environ['CAIRN_METRICS_PORT'],\n"
    "    'http_enabled': os.environ.get('CAIRN_HTTP_ENABLED')}), flush=True)\n"
    "time.sleep(120)\n"
)


def test_member_names_keep_the_first_under_the_service_name() -> None:
    assert member_name("retriever") == member_name("retriever", 1) == "retriever"
    assert member_name("retriever", 2) == "retriever#2"
    assert split_member("retriever#2") == ("retriever", 2)
    assert split_member("prompt-store") == ("prompt-store", 1)
    for bad in ("retriever#", "retriever#1", "retriever#02", f"retriever#{MAX_REPLICAS + 1}", "retriever#x"):
        with pytest.raises(ValueError, match="a member is named"):
            split_member(bad)
    with pytest.raises(ValueError, match="numbered 1 to"):
        member_name("retriever", 0)


def test_every_member_of_every_service_has_its_own_metrics_port_in_either_profile() -> None:
    local, test = StackConfig(profile="local"), StackConfig(profile="test")
    ports = [
        config.metrics_port(service, k)
        for config in (local, test)
        for service in SERVICE_METRICS_OFFSETS
        for k in range(1, MAX_REPLICAS + 1)
    ]
    assert len(set(ports)) == len(ports)
    assert local.metrics_port("retriever") == local.metrics_port_base + 1  # member 1 as before
    assert local.metrics_port("retriever", 3) == local.metrics_port_base + 21
    assert max(ports[: len(ports) // 2]) < PROFILE_DEFAULTS["test"]["metrics_port_base"]
    assert test.service_metrics_env("audit", 2)["CAIRN_METRICS_PORT"] == str(test.metrics_port_base + 17)


def test_replicas_take_a_count_for_all_or_per_service() -> None:
    services = ["retriever", "safety", "audit"]
    assert parse_replicas([], services) == {"retriever": 1, "safety": 1, "audit": 1}
    assert parse_replicas(["2"], services) == {"retriever": 2, "safety": 2, "audit": 2}
    assert parse_replicas(["retriever=3", "2"], services) == {"retriever": 3, "safety": 2, "audit": 2}
    for bad, why in [("0", "count must be"), ("x=2", "not among"), ("retriever=many", "count must be")]:
        with pytest.raises(typer.BadParameter, match=why):
            parse_replicas([bad], services)


@pytest.fixture
def fake_services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StackConfig]:
    """`retriever` and `safety` as a fake service that logs its environment and sleeps, on a stack
    folder of the test's own."""
    code = tmp_path / "code" / "fake_service"
    code.mkdir(parents=True)
    (code / "__main__.py").write_text(FAKE_SERVICE)
    monkeypatch.setenv("PYTHONPATH", str(code.parent))
    monkeypatch.setenv("CAIRN_STACK_ROOT_DIR", str(tmp_path / "stack"))
    monkeypatch.setenv("CAIRN_STACK_PROFILE", "test")
    names = ["retriever", "safety"]
    monkeypatch.setattr(services_cmd, "service_modules", lambda: dict.fromkeys(names, "fake_service"))
    topics = {"retriever": ["cairn.prompts"], "safety": ["cairn.contexts", "cairn.completions"]}
    monkeypatch.setattr(
        services_cmd, "service_routers", lambda: {n: SimpleNamespace(topics=t) for n, t in topics.items()}
    )
    config = StackConfig()
    yield config
    services_cmd.stop_services(config)


def ready_line(config: StackConfig, name: str) -> dict[str, str]:
    line = next(x for x in manager(config).tail(name, 20).splitlines() if "service ready" in x)
    return dict(json.loads(line))


def test_up_runs_members_in_one_group_each_with_its_own_process_port_and_log(
    fake_services: StackConfig,
) -> None:
    config, runner = fake_services, CliRunner()
    result = runner.invoke(services_cmd.app, ["up", "--replicas", "retriever=2", "--timeout", "60"])
    assert result.exit_code == 0, result.output
    assert "started: retriever, retriever#2, safety" in result.output
    pm = manager(config)
    assert {n: pm.is_running(n) for n in ("retriever", "retriever#2", "safety", "safety#2")} == {
        "retriever": True,
        "retriever#2": True,
        "safety": True,
        "safety#2": False,
    }
    assert pm.pid("retriever") != pm.pid("retriever#2")
    assert pm.info("retriever#2").log_path != pm.info("retriever").log_path
    first, second = ready_line(config, "retriever"), ready_line(config, "retriever#2")
    # the same service name, so the same default group (cairn-retriever) and ce_source
    assert first["service"] == second["service"] == "retriever"
    assert first["group"] is None
    assert second["group"] is None
    assert (first["metrics_port"], second["metrics_port"]) == (
        str(config.metrics_port("retriever")),
        str(config.metrics_port("retriever", 2)),
    )
    assert (first["http_enabled"], second["http_enabled"]) == (None, "false")

    again = runner.invoke(services_cmd.app, ["up", "--replicas", "1", "--no-wait"])
    assert "nothing (already running)" in again.output
    assert "also running: retriever#2" in again.output

    status = runner.invoke(services_cmd.app, ["status"]).output
    states = {
        cells[0]: cells[1]
        for line in status.splitlines()
        if len(cells := [c.strip() for c in line.strip("│ ").split("│")]) > 2
    }
    assert {k: states.get(k) for k in ("retriever", "retriever#2", "safety")} == dict.fromkeys(
        ("retriever", "retriever#2", "safety"), "running"
    ), status

    logs = runner.invoke(services_cmd.app, ["logs", "retriever#2", "--lines", "5"])
    assert str(config.metrics_port("retriever", 2)) in logs.output
    assert runner.invoke(services_cmd.app, ["logs", "retriever#1"]).exit_code != 0

    down = runner.invoke(services_cmd.app, ["down", "retriever#2"])
    assert "stopped: retriever#2" in down.output
    assert pm.is_running("retriever")
    assert not pm.is_running("retriever#2")
    runner.invoke(services_cmd.app, ["up", "retriever#2", "--timeout", "60"])
    assert pm.is_running("retriever#2")
    down = runner.invoke(services_cmd.app, ["down", "retriever"])
    assert "stopped: retriever, retriever#2" in down.output
    assert pm.is_running("safety")


def test_more_members_than_partitions_is_told_and_unknown_names_refused(fake_services: StackConfig) -> None:
    runner = CliRunner()
    result = runner.invoke(services_cmd.app, ["up", "retriever", "--replicas", "8", "--no-wait"])
    assert result.exit_code == 0, result.output
    assert "retriever: 8 members, but its topics have at most 6 partitions: 2 will hold none" in result.output
    assert len(services_cmd.recorded_members(manager(fake_services), "retriever")) == 8
    refused = runner.invoke(services_cmd.app, ["up", "nosuch", "--no-wait"])
    assert refused.exit_code != 0
    assert "unknown service(s): nosuch" in refused.output
    refused = runner.invoke(services_cmd.app, ["up", "safety", "--replicas", "retriever=2"])
    assert refused.exit_code != 0


def test_each_member_signs_as_its_service_and_trusts_the_stacks_keys(tmp_path: Path) -> None:
    config = StackConfig(profile="test", root_dir=tmp_path)
    env = services_cmd.member_env(config, "evaluator", 2)
    trusted = Path(env["CAIRN_TRUSTED_KEYS_DIR"])
    assert (trusted / "evaluator.pub").is_file()
    key = Path(env["CAIRN_SIGNING_KEY_FILE"])
    assert key.is_file()
    assert key.stem == "evaluator"  # the service's own key, not the command line's


def test_local_inference_serves_int8_beside_float32_and_routes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = StackConfig(profile="test", root_dir=tmp_path)
    env = services_cmd.member_env(config, "inference", 1)
    assert (env["CAIRN_QUANTIZED_BACKENDS"], env["CAIRN_ROUTING_DIR"]) == ('["int8"]', "infra/routing")
    assert "CAIRN_ROUTING_DIR" not in services_cmd.member_env(config, "safety", 1)
    monkeypatch.setenv("CAIRN_QUANTIZED_BACKENDS", "[]")
    assert services_cmd.member_env(config, "inference", 1)["CAIRN_QUANTIZED_BACKENDS"] == "[]"
