"""Prometheus (optional): scrapes every service's /metrics on its local port, with Cairn's alert rules.

Started only when `StackConfig.prometheus` is set (`CAIRN_STACK_PROMETHEUS=1`, or `up --prometheus`).
The binary is Debian's (see `binaries.prometheus_binaries`). The scrape config is generated from
the stack's settings (`local_prometheus_config`) and written as JSON, which Prometheus reads as YAML.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path
from typing import Any

from .._util import clean_env
from ..binaries import prometheus_binaries
from ..config import StackConfig, find_repo_root, setting_env_name
from .base import Component, LaunchSpec, PortSpec

#: The rules shared with the compose and Kubernetes Prometheus.
RULES_DIR = find_repo_root() / "infra" / "prometheus" / "rules"


def local_prometheus_config(
    config: StackConfig, rules_dir: Path | None = RULES_DIR, scrape_interval: str = "5s"
) -> dict[str, Any]:
    """Prometheus's configuration for this stack: itself, and job `cairn` with one static target
    per service (`host:metrics_port`, labelled with its `service`), plus the alert rules."""
    targets = [
        {"targets": [f"{config.host}:{port}"], "labels": {"service": service}}
        for service, port in config.metrics_ports().items()
    ]
    document: dict[str, Any] = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [
            {
                "job_name": "prometheus",
                "static_configs": [{"targets": [f"{config.host}:{config.prometheus_port}"]}],
            },
            {"job_name": "cairn", "honor_labels": True, "static_configs": targets},
        ],
    }
    if rules_dir is not None and rules_dir.is_dir():
        document["rule_files"] = [str(rules_dir / "*.yml")]
    return document


class Prometheus(Component):
    name = "prometheus"
    start_timeout = 60.0
    stop_timeout = 15.0

    @property
    def port(self) -> int:
        return self.config.prometheus_port

    def ports(self) -> list[PortSpec]:
        return [PortSpec("http", self.config.prometheus_port, setting_env_name("prometheus_port"))]

    @property
    def config_file(self) -> Path:
        return self.home / "prometheus.yml"

    def config_text(self) -> str:
        return json.dumps(local_prometheus_config(self.config), indent=2) + "\n"

    def prepare(self) -> dict[str, float]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(self.config_text())
        return {}

    def launch(self) -> LaunchSpec:
        binaries = prometheus_binaries(self.config.stack_dir / "bin")
        argv = [
            str(binaries.prometheus),
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.data_dir}",
            "--storage.tsdb.retention.time=2d",
            f"--web.listen-address={self.config.host}:{self.config.prometheus_port}",
            "--web.enable-lifecycle",
        ]
        # the generated config is part of the settings: a changed one restarts Prometheus
        return LaunchSpec(argv=argv, env=clean_env(), cwd=self.home, settings=(self.config_text(),))

    async def probe(self) -> None:
        url = f"{self.config.prometheus_url}/-/ready"

        def get() -> None:
            with urllib.request.urlopen(url, timeout=self.probe_timeout) as response:
                if response.status != 200:
                    raise RuntimeError(f"{url} answered {response.status}")

        await asyncio.to_thread(get)
