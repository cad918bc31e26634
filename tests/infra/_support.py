"""Helpers of the deployment tests: repository layout, service Settings, topic files, images.

Loaded by path (see `load_support` in conftest.py and the test modules), because the suite runs
with `--import-mode=importlib`, where a test folder is not on sys.path. Reads files only: no
Docker engine, cluster or broker is needed.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMAS_DIR = REPO_ROOT / "schemas"
TOPICS_DIR = SCHEMAS_DIR / "topics"
CREATE_TOPICS_SCRIPT = REPO_ROOT / "infra" / "kafka" / "create_topics.py"
DOCKERFILE = REPO_ROOT / "infra" / "docker" / "Dockerfile"

#: Environment names a service container may get that are not fields of its Settings class.
#: CAIRN_SCHEMAS_DIR is read by cairn_events.paths.schemas_dir().
NON_SETTINGS_ENV = frozenset({"CAIRN_SCHEMAS_DIR"})


@dataclass(frozen=True)
class ServiceInfo:
    """One folder under services/: its package and its Settings class."""

    folder: str
    package: str

    @property
    def settings_class(self) -> Any:
        return importlib.import_module(f"{self.package}.settings").Settings

    @property
    def env_names(self) -> set[str]:
        """The environment variable of every Settings field (env prefix + upper-cased field name)."""
        cls = self.settings_class
        prefix = str(cls.model_config.get("env_prefix", ""))
        return {f"{prefix}{name}".upper() for name in cls.model_fields}

    @property
    def group_id(self) -> str:
        return f"cairn-{self.folder}"


def discover_services() -> dict[str, ServiceInfo]:
    """services/<folder>/src/<package>/ for every folder holding a pyproject.toml."""
    found: dict[str, ServiceInfo] = {}
    for folder in sorted((REPO_ROOT / "services").iterdir()):
        if not (folder / "pyproject.toml").is_file():
            continue
        packages = [p.name for p in (folder / "src").iterdir() if p.is_dir() and p.name.startswith("cairn_")]
        assert len(packages) == 1, f"{folder}: expected one cairn_* package under src/, found {packages}"
        found[folder.name] = ServiceInfo(folder=folder.name, package=packages[0])
    return found


SERVICES = discover_services()


def read_topic_files() -> dict[str, dict[str, Any]]:
    """schemas/topics/*.yaml as plain dicts, by topic name (read independently of the script)."""
    topics: dict[str, dict[str, Any]] = {}
    for path in sorted(TOPICS_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        topics[doc["name"]] = doc
    return topics


def consumed_partitions(topics: Mapping[str, Mapping[str, Any]], service: str) -> int:
    """Partitions of every topic a service consumes today or is planned to (0 if none)."""
    total = 0
    for doc in topics.values():
        consumers = set(doc.get("consumers") or []) | set((doc.get("planned") or {}).get("consumers") or [])
        if service in consumers:
            total += int(doc["partitions"])
    return total


def load_create_topics() -> ModuleType:
    """infra/kafka/create_topics.py as a module (it is a script, not an installed package)."""
    name = "cairn_infra_create_topics"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, CREATE_TOPICS_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def dockerfile_env() -> dict[str, str]:
    """ENV name=value pairs of the runtime stage of infra/docker/Dockerfile (continuations joined)."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip().startswith("ENV "):
            for name, value in re.findall(r"([A-Z_][A-Z0-9_]*)=(\S+)", line):
                env[name] = value
    return env


def image_is_pinned(image: str) -> bool:
    """`repo[:tag][@digest]` with a tag other than `latest` (or a digest)."""
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return False
    tag = last.split(":", 1)[1]
    return bool(tag) and tag != "latest" and "$" not in tag


# --- PromQL ---------------------------------------------------------------------------------------

_PROMQL_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_PROMQL_MATCHERS = re.compile(r"\{[^{}]*\}")
_PROMQL_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_PROMQL_RANGE = re.compile(r"\[[^\]]*\]")
_PROMQL_IDENT = re.compile(r"(?<![\w$.:])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")
_PROMQL_WORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool"}
    | {"inf", "nan", "Inf", "NaN", "le"}
)


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers outside strings, label matchers,
    grouping clauses and ranges that are neither keywords nor function calls; Grafana variables
    (`$service`, `$__rate_interval`) are ignored."""
    text = _PROMQL_STRING.sub('""', expr)
    text = _PROMQL_MATCHERS.sub(" ", text)
    text = _PROMQL_GROUPING.sub(" ", text)
    text = _PROMQL_RANGE.sub(" ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)
    return {name for name in _PROMQL_IDENT.findall(text) if name not in _PROMQL_WORDS}
