"""Helpers of the deployment tests: repository layout, service Settings, topic files, images, and
the offline schema validation of Kubernetes manifests.

Loaded by path (see `load_support` in conftest.py and the test modules), because the suite runs
with `--import-mode=importlib`, where a test folder is not on sys.path. Reads files only: no
Docker engine, cluster or broker is needed.
"""

from __future__ import annotations

import importlib
import importlib.resources
import importlib.util
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMAS_DIR = REPO_ROOT / "schemas"
TOPICS_DIR = SCHEMAS_DIR / "topics"
CREATE_TOPICS_SCRIPT = REPO_ROOT / "infra" / "kafka" / "create_topics.py"
DOCKERFILE = REPO_ROOT / "infra" / "docker" / "Dockerfile"

#: Environment names a service container may get that are not fields of its Settings class.
#: CAIRN_SCHEMAS_DIR is read by cairn_events.paths.schemas_dir().
NON_SETTINGS_ENV = frozenset(
    {
        "CAIRN_SCHEMAS_DIR",
        # read by cairn_bus.signing, outside Settings, like the schemas folder
        "CAIRN_TRUSTED_KEYS_DIR",
        "CAIRN_REQUIRE_SIGNATURES",
        "CAIRN_SIGNING_KEY_FILE",
        # read_secret("master_key") by cairn_auth.encryption, outside Settings
        "CAIRN_MASTER_KEY",
        # read_secret("console_secret") by the gateway's console, outside Settings
        "CAIRN_CONSOLE_SECRET",
    }
)


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
        from cairn_bus.settings import credential_fields

        cls = self.settings_class
        prefix = str(cls.model_config.get("env_prefix", ""))
        # a credential may also come from a file: `<VAR>_FILE` (read_secret)
        files = {f"{prefix}{name}_FILE".upper() for name in credential_fields(cls)}
        return {f"{prefix}{name}".upper() for name in cls.model_fields} | files

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


def load_strimzi_users() -> ModuleType:
    """infra/kafka/strimzi_users.py as a module (a script, not an installed package)."""
    name = "cairn_infra_strimzi_users"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, REPO_ROOT / "infra" / "kafka" / "strimzi_users.py"
        )
        assert spec is not None
        assert spec.loader is not None
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[name]


#: Services that read without a consumer group (said once, in infra/kafka/strimzi_users.py): no
#: KEDA ScaledObject (no group lag), a CPU HorizontalPodAutoscaler instead; no group ACL.
GROUPLESS_SERVICES: frozenset[str] = frozenset(load_strimzi_users().GROUPLESS_SERVICES)
#: The services that are members of their consumer group `cairn-<service>`.
GROUP_SERVICES: dict[str, ServiceInfo] = {k: v for k, v in SERVICES.items() if k not in GROUPLESS_SERVICES}


def read_topic_files() -> dict[str, dict[str, Any]]:
    """schemas/topics/*.yaml as plain dicts, by topic name (read independently of the script)."""
    topics: dict[str, dict[str, Any]] = {}
    for path in sorted(TOPICS_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        topics[doc["name"]] = doc
    return topics


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


# --- Kubernetes manifests against the API schemas ------------------------------------------------

#: Keywords of a CRD's OpenAPI v3 schema that say nothing about what the API server accepts.
_CRD_ANNOTATIONS = frozenset(
    {"description", "default", "example", "title", "externalDocs"}
    | {"x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type"}
)
#: Keywords that mean the same in JSON Schema 2020-12.
_CRD_SAME = frozenset(
    {"type", "enum", "format", "pattern", "required", "minimum", "maximum", "multipleOf"}
    | {"minLength", "maxLength", "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties"}
)
_CRD_HANDLED = frozenset({"x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields", "nullable"})
_CRD_SUBSCHEMAS = ("allOf", "anyOf", "oneOf")
_CRD_EXCLUSIVE = {"exclusiveMinimum": "minimum", "exclusiveMaximum": "maximum"}


def crd_json_schema(node: Mapping[str, Any]) -> dict[str, Any]:
    """A CRD's structural OpenAPI v3 schema as JSON Schema, read as the API server reads it with
    strict field validation (`kubectl apply`'s default): a field the schema does not declare is an
    error unless `x-kubernetes-preserve-unknown-fields` says otherwise. A keyword this does not know
    (CEL `x-kubernetes-validations`, say) raises ValueError instead of being skipped."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _CRD_ANNOTATIONS or key in _CRD_HANDLED:
            continue
        if key == "properties":
            out[key] = {name: crd_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "not"):
            out[key] = crd_json_schema(value)
        elif key == "additionalProperties":
            out[key] = value if isinstance(value, bool) else crd_json_schema(value)
        elif key in _CRD_SUBSCHEMAS:
            out[key] = [crd_json_schema(sub) for sub in value]
        elif key in _CRD_EXCLUSIVE:
            if value is True:  # OpenAPI 3.0: a flag on minimum/maximum
                out[key] = node[_CRD_EXCLUSIVE[key]]
        elif key in _CRD_SAME:
            out[key] = value
        else:
            raise ValueError(f"CRD schema keyword {key!r} is not understood by crd_json_schema")
    for key, bound in _CRD_EXCLUSIVE.items():
        if key in out:
            out.pop(bound, None)
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if (
        node.get("type") == "object"
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


class ManifestValidator:
    """Checks Kubernetes objects offline against the schemas of one Kubernetes version.

    Built-in kinds go through `kubernetes_validate.validate(..., strict=True)` (the API's OpenAPI
    schemas shipped in the package, unknown fields rejected). Custom resources are checked against
    their CustomResourceDefinitions (`crd_json_schema`), with `metadata` checked as the API's
    ObjectMeta; the `metadata` of a trigger (KEDA's `spec.triggers[]`) is checked against the
    schema given for its `type`. An object with no schema at all is an error, never a skip.
    """

    def __init__(
        self,
        kubernetes_version: str,
        crds: list[Mapping[str, Any]],
        trigger_metadata: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self.kubernetes_version = kubernetes_version
        definitions_file = (
            importlib.resources.files("kubernetes_validate")
            / "kubernetes-json-schema"
            / f"v{kubernetes_version}.0-local-strict"
            / "_definitions.json"
        )
        if not definitions_file.is_file():
            raise ValueError(f"kubernetes-validate ships no schemas for Kubernetes {kubernetes_version}")
        definitions = json.loads(definitions_file.read_text(encoding="utf-8"))
        registry: Registry[Any] = Resource.from_contents(definitions) @ Registry()
        object_meta = {"$ref": f"{definitions['$id']}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}

        self._custom: dict[tuple[str, str], Draft202012Validator] = {}
        for crd in crds:
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served"):
                    continue
                schema = crd_json_schema(version["schema"]["openAPIV3Schema"])
                schema["properties"]["apiVersion"] = {"const": f"{group}/{version['name']}"}
                schema["properties"]["kind"] = {"const": kind}
                schema["properties"]["metadata"] = object_meta
                schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
                Draft202012Validator.check_schema(schema)
                self._custom[(f"{group}/{version['name']}", kind)] = Draft202012Validator(
                    schema, registry=registry
                )
        self._trigger_metadata: dict[str, Draft202012Validator] = {}
        for trigger_type, schema in trigger_metadata.items():
            Draft202012Validator.check_schema(schema)
            self._trigger_metadata[trigger_type] = Draft202012Validator(schema)

    def errors(self, doc: Mapping[str, Any]) -> list[str]:
        """What is wrong with one object, as `path: message` lines (empty when it validates)."""
        key = (str(doc.get("apiVersion")), str(doc.get("kind")))
        custom = self._custom.get(key)
        if custom is None:
            return self._builtin_errors(doc)
        found = [_error_line(error) for error in custom.iter_errors(doc)]
        triggers = (doc.get("spec") or {}).get("triggers")
        if not found and isinstance(triggers, list):
            for index, trigger in enumerate(triggers):
                checker = self._trigger_metadata.get(trigger["type"])
                if checker is None:
                    found.append(f"spec.triggers.{index}.type: no metadata schema for {trigger['type']!r}")
                    continue
                prefix = f"spec.triggers.{index}.metadata"
                found += [_error_line(error, prefix) for error in checker.iter_errors(trigger["metadata"])]
        return found

    def _builtin_errors(self, doc: Mapping[str, Any]) -> list[str]:
        try:
            kubernetes_validate.validate(dict(doc), self.kubernetes_version, strict=True)
        except kubernetes_validate.ValidationError as error:
            return [_error_line(error)]
        except kubernetes_validate.SchemaNotFoundError as error:
            return [f"(no schema) {error.message}"]
        return []


def _error_line(error: Any, prefix: str = "") -> str:
    parts = [prefix] if prefix else []
    parts += [str(part) for part in error.absolute_path]
    return f"{'.'.join(parts) or '(object)'}: {error.message}"


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
