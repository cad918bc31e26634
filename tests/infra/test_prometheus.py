"""infra/prometheus: scrape configs, alert rules and their promtool unit tests; the local Prometheus.

promtool comes from Debian's `prometheus` package, unpacked without root by
`cairn_localstack.binaries.prometheus_binaries` (cached in the stack folder); the promtool tests
skip, saying why, only when that package cannot be fetched.
"""

from __future__ import annotations

import importlib.util
import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, start_http_server

from cairn_localstack import StackConfig
from cairn_localstack.binaries import PrometheusBinaries, PrometheusUnavailableError, prometheus_binaries
from cairn_localstack.components.prometheus import RULES_DIR, Prometheus, local_prometheus_config
from cairn_localstack.config import SERVICE_METRICS_OFFSETS
from cairn_localstack.process import ProcessManager
from cairn_observability.catalog import SCRAPE_SERIES, series_names


def _support() -> ModuleType:
    """tests/infra/_support.py (conftest.py loads it first; this is the fallback)."""
    name = "cairn_tests_infra_support"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("_support.py"))
        assert spec is not None
        assert spec.loader is not None
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[name]


support = _support()

PROMETHEUS_DIR: Path = support.REPO_ROOT / "infra" / "prometheus"
RULES_FILE = PROMETHEUS_DIR / "rules" / "cairn-alerts.yml"
RULE_TESTS = PROMETHEUS_DIR / "tests" / "cairn-alerts.test.yml"
RUNBOOK = PROMETHEUS_DIR / "RUNBOOK.md"
SERVICES: dict[str, Any] = support.SERVICES
#: Every alert the issue asks for, by what it watches.
REQUIRED_ALERTS = {
    "CairnRequestErrorRateHigh",  # error rate
    "CairnLatencySLOBreach",  # p99 latency SLO
    "CairnConsumerLagHigh",
    "CairnDeadLetters",
    "CairnGroundednessDrop",
    "CairnDriftDetected",
    "CairnCostBudgetExceeded",
}


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


@pytest.fixture(scope="session")
def prometheus_bins() -> PrometheusBinaries:
    try:
        return prometheus_binaries(StackConfig().stack_dir / "bin")
    except PrometheusUnavailableError as exc:
        pytest.skip(f"promtool unavailable: {exc}")


def promtool(bins: PrometheusBinaries, *args: str, cwd: Path = PROMETHEUS_DIR) -> str:
    done = subprocess.run(
        [str(bins.promtool), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


# --- files ----------------------------------------------------------------------------------------


def test_every_alert_has_severity_summary_and_a_runbook_section() -> None:
    anchors = {
        "#" + re.sub(r"[^a-z0-9 -]", "", line[3:].strip().lower()).replace(" ", "-")
        for line in RUNBOOK.read_text(encoding="utf-8").splitlines()
        if line.startswith("## ")
    }
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} >= REQUIRED_ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        runbook = rule["annotations"]["runbook_url"]
        assert runbook == f"infra/prometheus/RUNBOOK.md#{rule['alert'].lower()}"
        assert "#" + runbook.split("#", 1)[1] in anchors, f"no RUNBOOK.md section for {rule['alert']}"


def test_every_metric_the_rules_use_is_in_the_catalog() -> None:
    known = series_names() | SCRAPE_SERIES
    for rule in alert_rules():
        used = support.promql_metric_names(str(rule["expr"]))
        assert used, rule["alert"]
        assert used <= known, f"{rule['alert']} uses metrics outside the catalog: {sorted(used - known)}"


def test_the_promql_parser_finds_metric_names_only() -> None:
    expr = (
        'sum by (service, le) (rate(cairn_hop_latency_seconds_bucket{hop=~"cairn.+",le!="1"}[5m]))'
        " / on (service) group_left max without (gen_ai_token_type) (gen_ai_client_token_usage_sum"
        '{service="$service"}[$__rate_interval]) > bool 0.5 and up offset 1d'
    )
    assert support.promql_metric_names(expr) == {
        "cairn_hop_latency_seconds_bucket",
        "gen_ai_client_token_usage_sum",
        "up",
    }


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    cases = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))
    assert [(PROMETHEUS_DIR / "tests" / f).resolve() for f in cases["rule_files"]] == [RULES_FILE.resolve()]
    firing: set[str] = set()
    silent: set[str] = set()
    for case in cases["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    alerts = {rule["alert"] for rule in alert_rules()}
    assert alerts - firing == set(), "never tested firing"
    assert alerts - silent == set(), "never tested silent"


def test_compose_config_scrapes_every_service_with_its_own_service_label() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    assert config["rule_files"] == ["rules/*.yml"]
    cairn = next(job for job in config["scrape_configs"] if job["job_name"] == "cairn")
    assert cairn["honor_labels"] is True
    assert {name for sd in cairn["dns_sd_configs"] for name in sd["names"]} == set(SERVICES)


def test_kubernetes_config_keeps_only_annotated_service_pods() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus-k8s.yml").read_text(encoding="utf-8"))
    cairn = next(job for job in config["scrape_configs"] if job["job_name"] == "cairn")
    keeps = {
        (tuple(r["source_labels"]), r["regex"]) for r in cairn["relabel_configs"] if r.get("action") == "keep"
    }
    assert keeps == {
        (("__meta_kubernetes_pod_annotation_prometheus_io_scrape",), "true"),
        (("__meta_kubernetes_pod_label_app_kubernetes_io_component",), "service"),
    }
    k8s = support.REPO_ROOT / "infra" / "k8s" / "services"
    for folder in SERVICES:
        docs = yaml.safe_load_all((k8s / f"{folder}.yaml").read_text(encoding="utf-8"))
        deployment = next(doc for doc in docs if doc and doc["kind"] == "Deployment")
        pod = deployment["spec"]["template"]["metadata"]
        assert pod["annotations"]["prometheus.io/scrape"] == "true"
        assert pod["labels"]["app.kubernetes.io/component"] == "service"
        assert pod["labels"]["app.kubernetes.io/name"] == folder


# --- local config -----------------------------------------------------------------------------


def test_local_config_targets_each_service_on_its_metrics_port(tmp_path: Path) -> None:
    config = StackConfig(profile="test", root_dir=tmp_path, host="127.0.0.1")
    document = local_prometheus_config(config)
    cairn = next(job for job in document["scrape_configs"] if job["job_name"] == "cairn")
    targets = {sc["labels"]["service"]: sc["targets"] for sc in cairn["static_configs"]}
    assert set(targets) == set(SERVICES) == set(SERVICE_METRICS_OFFSETS)
    assert targets["prompt-store"] == ["127.0.0.1:19560"]
    assert targets["audit"] == ["127.0.0.1:19567"]
    assert document["rule_files"] == [str(RULES_DIR / "*.yml")]
    assert local_prometheus_config(config, rules_dir=tmp_path / "none").get("rule_files") is None


def test_profiles_keep_prometheus_and_metrics_ports_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("PROFILE", "PROMETHEUS", "PROMETHEUS_PORT", "METRICS_PORT_BASE"):
        monkeypatch.delenv(f"CAIRN_STACK_{key}", raising=False)
    local, test = StackConfig.for_profile("local"), StackConfig.for_profile("test")
    assert (local.prometheus_port, test.prometheus_port) == (19090, 19190)
    assert not local.prometheus, "Prometheus is opt-in"
    assert not test.prometheus, "Prometheus is opt-in"
    taken = {local.kafka_port, test.kafka_port, local.pg_port, test.pg_port}
    taken |= set(local.s3_ports.values()) | set(test.s3_ports.values())
    ports = [*local.metrics_ports().values(), *test.metrics_ports().values()]
    assert len(set(ports)) == len(ports) == 2 * len(SERVICES)
    assert not (set(ports) | {19090, 19190}) & taken
    assert test.service_metrics_env("safety") == {
        "CAIRN_METRICS_PORT": "19562",
        "CAIRN_METRICS_HOST": "127.0.0.1",
    }
    with pytest.raises(KeyError, match="known: prompt-store"):
        test.metrics_port("no-such-service")
    monkeypatch.setenv("CAIRN_STACK_PROMETHEUS", "1")
    assert StackConfig.for_profile("test").prometheus


# --- promtool -------------------------------------------------------------------------------------


def test_promtool_accepts_the_compose_config(prometheus_bins: PrometheusBinaries) -> None:
    output = promtool(prometheus_bins, "check", "config", "prometheus.yml")
    assert "1 rule files found" in output


def test_promtool_accepts_the_rules(prometheus_bins: PrometheusBinaries) -> None:
    output = promtool(prometheus_bins, "check", "rules", "rules/cairn-alerts.yml")
    assert f"{len(alert_rules())} rules found" in output


def test_promtool_rule_unit_tests_pass(prometheus_bins: PrometheusBinaries) -> None:
    assert "SUCCESS" in promtool(prometheus_bins, "test", "rules", "tests/cairn-alerts.test.yml")


def test_promtool_fails_a_rule_unit_test_when_a_threshold_moves(
    prometheus_bins: PrometheusBinaries, tmp_path: Path
) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    loosened = RULES_FILE.read_text(encoding="utf-8").replace("> 1000", "> 100000")
    (tmp_path / "rules" / "cairn-alerts.yml").write_text(loosened)
    (tmp_path / "tests" / "t.yml").write_text(RULE_TESTS.read_text(encoding="utf-8"))
    done = subprocess.run(
        [str(prometheus_bins.promtool), "test", "rules", "tests/t.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "CairnConsumerLagHigh" in done.stdout + done.stderr


def test_promtool_accepts_the_generated_local_config(
    prometheus_bins: PrometheusBinaries, tmp_path: Path
) -> None:
    path = tmp_path / "prometheus.yml"
    path.write_text(json.dumps(local_prometheus_config(StackConfig(profile="test", root_dir=tmp_path))))
    assert "1 rule files found" in promtool(prometheus_bins, "check", "config", str(path), cwd=tmp_path)


# --- the local Prometheus, for real -----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _free_run(length: int) -> int:
    """A port p such that p .. p+length-1 are all free now."""
    for _ in range(50):
        base = _free_port()
        if base + length < 65535 and all(_port_free(base + i) for i in range(length)):
            return base
    raise RuntimeError("no run of free ports")


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.integration
def test_local_prometheus_scrapes_a_service(prometheus_bins: PrometheusBinaries, tmp_path: Path) -> None:
    config = StackConfig(
        profile="prom-it",
        root_dir=tmp_path,
        prometheus=True,
        prometheus_port=_free_port(),
        metrics_port_base=_free_run(len(SERVICE_METRICS_OFFSETS)),
    )
    registry = CollectorRegistry()
    Counter("cairn_deadletters", "dead letters", ["service", "kind"], registry=registry).labels(
        "safety", "not_json"
    ).inc(3)
    server, thread = start_http_server(config.metrics_port("safety"), addr="127.0.0.1", registry=registry)
    component = Prometheus(config, ProcessManager(tmp_path / "run"))
    try:
        component.start()
        assert component.healthy()
        query = f"{config.prometheus_url}/api/v1/query?query=cairn_deadletters_total"
        deadline = time.monotonic() + 30
        result: list[Any] = []
        while time.monotonic() < deadline and not result:
            with urllib.request.urlopen(query, timeout=5) as response:
                result = json.load(response)["data"]["result"]
            time.sleep(0.5)
        assert [(r["metric"]["service"], r["metric"]["kind"], r["value"][1]) for r in result] == [
            ("safety", "not_json", "3")
        ]
        with urllib.request.urlopen(f"{config.prometheus_url}/api/v1/rules", timeout=5) as response:
            groups = json.load(response)["data"]["groups"]
        assert {rule["name"] for g in groups for rule in g["rules"]} >= REQUIRED_ALERTS
    finally:
        component.stop()
        server.shutdown()
        thread.join(5)
