"""infra/grafana: provisioning points at the Prometheus the compose stack runs; every dashboard is
valid JSON with a uid, a title and panels whose PromQL selects only metrics of the catalog."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from cairn_observability.catalog import CATALOG, SCRAPE_SERIES, series_names


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
GRAFANA_DIR: Path = support.REPO_ROOT / "infra" / "grafana"
DASHBOARDS = sorted((GRAFANA_DIR / "dashboards").glob("*.json"))
DATASOURCE_UID = "cairn-prometheus"


def load(path: Path) -> dict[str, Any]:
    board = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(board, dict)
    return board


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    found = []
    for panel in board.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return [p for p in found if p.get("type") != "row"]


def test_the_four_dashboards_exist_with_unique_uids_and_titles() -> None:
    boards = [load(path) for path in DASHBOARDS]
    assert {b["uid"] for b in boards} == {"cairn-overview", "cairn-service", "cairn-quality", "cairn-cost"}
    assert len({b["title"] for b in boards}) == len(boards)
    for path, board in zip(DASHBOARDS, boards, strict=True):
        assert path.stem == board["uid"], "file name is the uid"
        assert len(board["uid"]) <= 40
        assert board["title"].startswith("Cairn / ")


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_panel_queries_the_provisioned_prometheus(path: Path) -> None:
    board = load(path)
    ids = [p["id"] for p in panels(board)]
    assert ids
    assert len(ids) == len(set(ids))
    for panel in panels(board):
        assert panel["title"]
        assert panel["type"] in {"timeseries", "stat", "table", "gauge", "bargauge"}
        assert panel["datasource"]["uid"] == DATASOURCE_UID, panel["title"]
        grid = panel["gridPos"]
        assert grid["w"] > 0
        assert grid["h"] > 0
        assert grid["x"] + grid["w"] <= 24
        targets = panel["targets"]
        assert targets, panel["title"]
        assert len({t["refId"] for t in targets}) == len(targets)
        for target in targets:
            assert target["expr"].strip(), panel["title"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_metric_a_dashboard_uses_is_in_the_catalog(path: Path) -> None:
    known = series_names() | SCRAPE_SERIES
    board = load(path)
    for panel in panels(board):
        for target in panel["targets"]:
            used = support.promql_metric_names(target["expr"])
            assert used, (panel["title"], target["expr"])
            assert used <= known, (
                f"{path.name} / {panel['title']}: not in the catalog: {sorted(used - known)}"
            )
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            assert variable["datasource"]["uid"] == DATASOURCE_UID
            selector = re.fullmatch(r"label_values\((.+),\s*\w+\)", variable["definition"])
            assert selector is not None, variable["definition"]
            assert support.promql_metric_names(selector.group(1)) <= known


def test_the_dashboards_together_show_every_catalog_family() -> None:
    used = {
        name
        for path in DASHBOARDS
        for panel in panels(load(path))
        for target in panel["targets"]
        for name in support.promql_metric_names(target["expr"])
    }
    shown = {spec.name for spec in CATALOG if spec.series_names & used}
    assert shown == {spec.name for spec in CATALOG}


def test_the_service_dashboard_selects_its_service_by_variable() -> None:
    board = load(GRAFANA_DIR / "dashboards" / "cairn-service.json")
    [variable] = board["templating"]["list"]
    assert variable["name"] == "service"
    for panel in panels(board):
        for target in panel["targets"]:
            assert 'service="$service"' in target["expr"], panel["title"]


def test_provisioning_loads_the_datasource_and_the_dashboard_folder() -> None:
    datasources = yaml.safe_load(
        (GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    [source] = datasources["datasources"]
    assert (source["uid"], source["type"], source["url"]) == (
        DATASOURCE_UID,
        "prometheus",
        "http://prometheus:9090",
    )
    providers = yaml.safe_load((GRAFANA_DIR / "provisioning" / "dashboards" / "cairn.yml").read_text())
    [provider] = providers["providers"]
    compose = yaml.safe_load((support.REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    mounts = {v.split(":")[1]: v.split(":")[0] for v in compose["services"]["grafana"]["volumes"]}
    assert mounts[provider["options"]["path"]] == "./infra/grafana/dashboards"
    assert mounts["/etc/grafana/provisioning"] == "./infra/grafana/provisioning"
    assert mounts.get("/etc/prometheus") is None
    assert "./infra/prometheus:/etc/prometheus:ro" in compose["services"]["prometheus"]["volumes"]
