"""infra/k8s agrees with the services, their Settings, the topic files and itself, and every object
validates against the Kubernetes API schemas and KEDA's ScaledObject CRD.

File-only and offline: the Kubernetes schemas ship in the `kubernetes-validate` package, KEDA's CRD
is vendored in tests/infra/schemas/ (see its README). `kubectl kustomize` runs too when kubectl is
installed (it needs no cluster).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from cairn_bus.contract import service_contracts


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
REPO_ROOT: Path = support.REPO_ROOT
SERVICES: dict[str, Any] = support.SERVICES
#: Members of a consumer group (KEDA scales them on its lag) and services without one (scaled on CPU).
GROUP_SERVICES: dict[str, Any] = support.GROUP_SERVICES
GROUPLESS_SERVICES: frozenset[str] = support.GROUPLESS_SERVICES
NON_SETTINGS_ENV: frozenset[str] = support.NON_SETTINGS_ENV

K8S_DIR = REPO_ROOT / "infra" / "k8s"
SECRETS_EXAMPLE = K8S_DIR / "secrets.example.yaml"
CAIRN_IMAGE = "cairn/services"

#: The Kubernetes API the manifests are validated against: inside KEDA v2.19's tested window
#: (v1.32 - v1.34), and shipped by the pinned kubernetes-validate.
KUBERNETES_VERSION = "1.34"
#: The KEDA release whose ScaledObject CRD and kafka scaler the manifests are written for.
KEDA_VERSION = "2.19.0"
KEDA_SCHEMAS = Path(__file__).with_name("schemas") / f"keda-{KEDA_VERSION}"


def load_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    data = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def manifests(kustomization: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object of every resource file kustomization.yaml lists."""
    docs: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        docs.extend(load_docs(K8S_DIR / resource))
    return docs


def objects(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for doc in manifests:
        if doc.get("kind") == kind:
            name = doc["metadata"]["name"]
            assert name not in found, f"two {kind} objects named {name}"
            found[name] = doc
    return found


@pytest.fixture(scope="module")
def deployments(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return objects(manifests, "Deployment")


@pytest.fixture(scope="module")
def config_maps(manifests: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {
        name: {k: str(v) for k, v in (cm.get("data") or {}).items()}
        for name, cm in objects(manifests, "ConfigMap").items()
    }


@pytest.fixture(scope="module")
def example_secrets() -> dict[str, dict[str, str]]:
    return {
        doc["metadata"]["name"]: {k: str(v) for k, v in (doc.get("stringData") or {}).items()}
        for doc in load_docs(SECRETS_EXAMPLE)
        if doc.get("kind") == "Secret"
    }


@pytest.fixture(scope="module")
def scaled_objects(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return objects(manifests, "ScaledObject")


@pytest.fixture(scope="module")
def autoscalers(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return objects(manifests, "HorizontalPodAutoscaler")


def pod_spec(workload: Mapping[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def only_container(workload: Mapping[str, Any]) -> dict[str, Any]:
    containers = pod_spec(workload)["containers"]
    assert len(containers) == 1, f"{workload['metadata']['name']}: one container per pod"
    container: dict[str, Any] = containers[0]
    return container


def containers(manifests: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in manifests:
        template = (doc.get("spec") or {}).get("template")
        if template:
            for container in template["spec"].get("containers", []) + template["spec"].get(
                "initContainers", []
            ):
                yield doc["metadata"]["name"], container


def container_env(
    container: Mapping[str, Any],
    config_maps: Mapping[str, Mapping[str, str]],
    secrets: Mapping[str, Mapping[str, str]],
) -> dict[str, str]:
    """What the container's environment holds (Secrets from secrets.example.yaml)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(config_maps[source["configMapRef"]["name"]])
        elif "secretRef" in source:
            env.update(secrets[source["secretRef"]["name"]])
    for item in container.get("env", []):
        env[item["name"]] = str(item.get("value", ""))
    return env


# --- files ----------------------------------------------------------------------------------------


def test_every_manifest_parses_and_is_listed_in_the_kustomization(kustomization: dict[str, Any]) -> None:
    listed = {(K8S_DIR / resource).resolve() for resource in kustomization["resources"]}
    for resource in listed:
        assert resource.is_file(), f"kustomization lists missing {resource}"
    on_disk = {p.resolve() for p in K8S_DIR.rglob("*.yaml")} - {
        (K8S_DIR / "kustomization.yaml").resolve(),
        SECRETS_EXAMPLE.resolve(),
    }
    assert on_disk == listed, f"not in kustomization.yaml: {sorted(str(p) for p in on_disk - listed)}"
    for path in [*on_disk, SECRETS_EXAMPLE]:
        for doc in load_docs(path):
            assert doc.get("apiVersion"), f"{path}: object without apiVersion"
            assert doc.get("kind"), f"{path}: object without kind"
            assert doc.get("metadata", {}).get("name"), f"{path}: object without a name"


def test_secret_values_are_never_in_the_kustomization(manifests: list[dict[str, Any]]) -> None:
    assert not [doc["metadata"]["name"] for doc in manifests if doc["kind"] == "Secret"]
    for values in (
        doc.get("stringData", {}) for doc in load_docs(SECRETS_EXAMPLE) if doc.get("kind") == "Secret"
    ):
        for key, value in values.items():
            if "PASSWORD" in key or "SECRET" in key or "TOKEN" in key or key.endswith("_DSN"):
                assert "CHANGE_ME" in str(value), f"secrets.example.yaml: {key} looks like a real value"


def test_every_image_is_pinned(manifests: list[dict[str, Any]], kustomization: dict[str, Any]) -> None:
    for owner, container in containers(manifests):
        assert support.image_is_pinned(container["image"]), f"{owner}: {container['image']} is not pinned"
    for image in kustomization.get("images", []):
        assert image.get("newTag") not in (None, "", "latest"), image


# --- the Kubernetes API and KEDA schemas ----------------------------------------------------------


@pytest.fixture(scope="module")
def validator() -> Any:
    crd = yaml.safe_load((KEDA_SCHEMAS / "keda.sh_scaledobjects.yaml").read_text(encoding="utf-8"))
    kafka = json.loads((KEDA_SCHEMAS / "kafka-trigger-metadata.json").read_text(encoding="utf-8"))
    return support.ManifestValidator(KUBERNETES_VERSION, crds=[crd], trigger_metadata={"kafka": kafka})


def test_every_object_validates_against_the_kubernetes_and_keda_schemas(
    manifests: list[dict[str, Any]], validator: Any
) -> None:
    """Strict: unknown fields, wrong types and objects of a kind with no schema all fail."""
    docs = [*manifests, *load_docs(SECRETS_EXAMPLE)]
    problems = [
        f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}: {line}"
        for doc in docs
        for line in validator.errors(doc)
    ]
    assert not problems, "\n".join(problems)
    kinds = {doc["kind"] for doc in docs}
    assert {"Namespace", "ConfigMap", "Secret", "Deployment", "Service", "Job", "ScaledObject"} <= kinds


def _first(manifests: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """A copy of the first object of that kind, to break."""
    for doc in manifests:
        if doc["kind"] == kind:
            return copy.deepcopy(doc)
    raise AssertionError(f"no {kind} in the manifests")


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = pod_spec(doc)["containers"][0]
    return container


def _trigger(doc: dict[str, Any]) -> dict[str, Any]:
    trigger: dict[str, Any] = doc["spec"]["triggers"][0]
    return trigger


#: (what is broken, the object, how it is broken, words the validator must say)
BROKEN: list[tuple[str, str, Any, str]] = [
    (
        "Deployment replicas as text",
        "Deployment",
        lambda d: d["spec"].update(replicas="two"),
        "spec.replicas",
    ),
    (
        "misspelt container field",
        "Deployment",
        lambda d: _container(d).update(imagePullPolicyy="Always"),
        "'imagePullPolicyy' was unexpected",
    ),
    (
        "container port as text",
        "Deployment",
        lambda d: _container(d)["ports"][0].update(containerPort="metrics"),
        "containerPort: 'metrics' is not of type 'integer'",
    ),
    (
        "pod without containers",
        "Deployment",
        lambda d: pod_spec(d).pop("containers"),
        "'containers' is a required",
    ),
    (
        "unknown Job field",
        "Job",
        lambda d: d["spec"].update(backoffLimitt=3),
        "'backoffLimitt' was unexpected",
    ),
    (
        "Service port as text",
        "Service",
        lambda d: d["spec"]["ports"][0].update(port="http"),
        "spec.ports.0.port",
    ),
    ("unquoted YAML boolean in a ConfigMap", "ConfigMap", lambda d: d["data"].update(X=False), "data.X"),
    (
        "unknown Namespace field",
        "Namespace",
        lambda d: d.update(spec={"finalizer": []}),
        "'finalizer' was unexpected",
    ),
    (
        "misspelt ScaledObject field",
        "ScaledObject",
        lambda d: d["spec"].update(maxReplicas=4),
        "'maxReplicas' was unexpected",
    ),
    (
        "replica count as text",
        "ScaledObject",
        lambda d: d["spec"].update(maxReplicaCount="6"),
        "spec.maxReplicaCount: '6' is not of type 'integer'",
    ),
    (
        "unknown ScaledObject metadata field",
        "ScaledObject",
        lambda d: d["metadata"].update(label={}),
        "metadata: Additional properties",
    ),
    (
        "topic beside the trigger's metadata",
        "ScaledObject",
        lambda d: _trigger(d).update(topic="cairn.requests"),
        "'topic' was unexpected",
    ),
    (
        "trigger metadata value not a string",
        "ScaledObject",
        lambda d: _trigger(d)["metadata"].update(lagThreshold=50),
        "lagThreshold: 50 is not of type 'string'",
    ),
    (
        "trigger without a type",
        "ScaledObject",
        lambda d: _trigger(d).pop("type"),
        "'type' is a required property",
    ),
    (
        "kafka trigger key KEDA does not read",
        "ScaledObject",
        lambda d: _trigger(d)["metadata"].update(topics="cairn.requests"),
        "'topics' was unexpected",
    ),
    (
        "several topics in one kafka trigger",
        "ScaledObject",
        lambda d: _trigger(d)["metadata"].update(topic="cairn.contexts,cairn.completions"),
        "metadata.topic",
    ),
    (
        "kafka trigger without a consumer group",
        "ScaledObject",
        lambda d: _trigger(d)["metadata"].pop("consumerGroup"),
        "is not valid under any of the given schemas",
    ),
    (
        "lag threshold of zero",
        "ScaledObject",
        lambda d: _trigger(d)["metadata"].update(lagThreshold="0"),
        "metadata.lagThreshold",
    ),
    (
        "trigger type with no metadata schema",
        "ScaledObject",
        lambda d: _trigger(d).update(type="kafkaa"),
        "no metadata schema for 'kafkaa'",
    ),
    (
        "ScaledObject of an unserved version",
        "ScaledObject",
        lambda d: d.update(apiVersion="keda.sh/v1"),
        "no schema",
    ),
]


@pytest.mark.parametrize(("broken", "kind", "change", "expected"), BROKEN, ids=[case[0] for case in BROKEN])
def test_the_validator_rejects_a_broken_object(
    manifests: list[dict[str, Any]], validator: Any, broken: str, kind: str, change: Any, expected: str
) -> None:
    doc = _first(manifests, kind)
    assert validator.errors(doc) == [], f"the {kind} must be valid before it is broken"
    change(doc)
    problems = validator.errors(doc)
    assert any(expected in line for line in problems), f"{broken}: {problems}"


def test_the_validator_rejects_a_broken_manifest_file(validator: Any) -> None:
    """The same from YAML text: an unquoted boolean and a number where Kubernetes wants strings."""
    text = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: broken
data:
  CAIRN_S3_SECURE: false
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: broken
spec:
  scaleTargetRef:
    name: broken
  triggers:
    - type: kafka
      metadata:
        bootstrapServers: kafka:9092
        consumerGroup: cairn-broken
        topic: cairn.requests
        lagThreshold: 50
"""
    config_map, scaled = [doc for doc in yaml.safe_load_all(text) if doc]
    assert validator.errors(config_map) == ["data.CAIRN_S3_SECURE: False is not of type 'string', 'null'"]
    assert validator.errors(scaled) == ["spec.triggers.0.metadata.lagThreshold: 50 is not of type 'string'"]


def test_crd_conversion_refuses_keywords_it_cannot_check() -> None:
    with pytest.raises(ValueError, match="x-kubernetes-validations"):
        support.crd_json_schema({"type": "object", "x-kubernetes-validations": [{"rule": "self.a > 0"}]})
    schema = support.crd_json_schema(
        {
            "type": "object",
            "properties": {
                "port": {
                    "x-kubernetes-int-or-string": True,
                    "anyOf": [{"type": "integer"}, {"type": "string"}],
                },
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "maybe": {"type": "string", "nullable": True},
            },
        }
    )
    assert schema["additionalProperties"] is False
    assert "additionalProperties" not in schema["properties"]["free"]
    assert {"type": "null"} in schema["properties"]["maybe"]["anyOf"]
    assert "type" not in schema["properties"]["port"]


# --- services <-> Deployments ---------------------------------------------------------------------


def test_every_service_folder_has_a_deployment_and_nothing_else(deployments: dict[str, Any]) -> None:
    cairn = {name for name, d in deployments.items() if only_container(d)["image"].startswith(CAIRN_IMAGE)}
    assert cairn == set(SERVICES), f"Deployments {sorted(cairn)} vs services/ {sorted(SERVICES)}"


@pytest.mark.parametrize("folder", sorted(SERVICES))
def test_deployment_command_runs_its_own_package(deployments: dict[str, Any], folder: str) -> None:
    container = only_container(deployments[folder])
    command = [*container.get("command", []), *container.get("args", [])]
    package = SERVICES[folder].package
    assert command == ["python", "-m", package]
    assert importlib.util.find_spec(package) is not None, f"{package} is not importable"


@pytest.mark.parametrize("folder", sorted(SERVICES))
def test_deployment_env_names_are_fields_of_its_settings(
    deployments: dict[str, Any],
    config_maps: dict[str, dict[str, str]],
    example_secrets: dict[str, dict[str, str]],
    folder: str,
) -> None:
    info = SERVICES[folder]
    container = only_container(deployments[folder])
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            assert source["configMapRef"]["name"] in config_maps, source
        if "secretRef" in source:
            assert source["secretRef"]["name"] in example_secrets, (
                f"document {source} in secrets.example.yaml"
            )
    env = container_env(container, config_maps, example_secrets)
    unknown = sorted(set(env) - info.env_names - NON_SETTINGS_ENV)
    assert not unknown, f"{folder}: {unknown} are not fields of {info.package}.settings.Settings"
    assert env.get("CAIRN_SCHEMAS_DIR") == support.dockerfile_env()["CAIRN_SCHEMAS_DIR"]


@pytest.mark.parametrize("folder", sorted(SERVICES))
def test_deployment_env_values_build_its_settings(
    deployments: dict[str, Any],
    config_maps: dict[str, dict[str, str]],
    example_secrets: dict[str, dict[str, str]],
    folder: str,
    settings_env: Any,
) -> None:
    info = SERVICES[folder]
    settings_env(container_env(only_container(deployments[folder]), config_maps, example_secrets))
    settings = info.settings_class()
    assert settings.group_id == info.group_id
    assert settings.kafka_session_timeout_ms >= 6000, "Apache Kafka rejects session timeouts below 6000 ms"


@pytest.mark.parametrize("folder", sorted(SERVICES))
def test_deployment_runs_as_non_root(deployments: dict[str, Any], folder: str) -> None:
    pod = pod_spec(deployments[folder])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    resources = only_container(deployments[folder])["resources"]
    assert resources["requests"]["cpu"]
    assert resources["requests"]["memory"]
    assert resources["limits"]["memory"]


# --- KEDA -----------------------------------------------------------------------------------------
#
# KEDA's `kafka` trigger (v2.19) reads the lag of one consumer group on one `topic`, and with
# `allowIdleConsumers: "false"` never asks for more replicas than that topic has partitions. Without
# a `topic` it sums the lag of the topics the group has committed offsets on (a topic it never
# committed to is invisible) and caps at their total partitions. The manifests name every topic:
# one trigger per topic the service really reads; KEDA scales to the largest count any trigger asks
# for, so a service never gets more replicas than its widest topic has partitions.


@pytest.fixture(scope="module")
def topics_read() -> dict[str, set[str]]:
    """Service -> the topics it subscribes to, from the routers the services run."""
    found = {
        name: {topic for topic, _ in contract.consumes} for name, contract in service_contracts().items()
    }
    assert set(found) == set(SERVICES), "every service folder is an installed service (cairn.services)"
    return found


def kafka_triggers(scaled: Mapping[str, Any]) -> list[dict[str, str]]:
    triggers = scaled["spec"]["triggers"]
    assert {t["type"] for t in triggers} == {"kafka"}, scaled["metadata"]["name"]
    return [t["metadata"] for t in triggers]


@pytest.mark.parametrize("folder", sorted(GROUP_SERVICES))
def test_scaled_object_follows_the_service_consumer_group(
    scaled_objects: dict[str, Any], config_maps: dict[str, dict[str, str]], folder: str
) -> None:
    scaled = scaled_objects[folder]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == folder
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    for meta in kafka_triggers(scaled):
        assert meta["consumerGroup"] == SERVICES[folder].group_id
        assert meta["bootstrapServers"] == config_maps["cairn-common"]["CAIRN_KAFKA_BOOTSTRAP"]
        assert meta["offsetResetPolicy"] == config_maps["cairn-common"]["CAIRN_KAFKA_AUTO_OFFSET_RESET"]
        assert str(meta["allowIdleConsumers"]).lower() == "false", "partitions must cap the replica count"
        assert int(meta["lagThreshold"]) >= 1


@pytest.mark.parametrize("folder", sorted(GROUP_SERVICES))
def test_scaled_object_names_every_topic_the_service_reads_once(
    scaled_objects: dict[str, Any], topics_read: dict[str, set[str]], folder: str
) -> None:
    named = [meta.get("topic") for meta in kafka_triggers(scaled_objects[folder])]
    assert None not in named, (
        f"{folder}: a kafka trigger without `topic` scales on whatever the group committed"
    )
    assert len(named) == len(set(named)), f"{folder}: a topic named twice: {named}"
    assert set(named) == topics_read[folder], (
        f"{folder} reads {sorted(topics_read[folder])}, its triggers name {sorted(named)}"
    )


def test_every_scaled_object_targets_a_service_deployment(
    scaled_objects: dict[str, Any], deployments: dict[str, Any]
) -> None:
    assert set(scaled_objects) == set(GROUP_SERVICES), "a ScaledObject per service with a consumer group"
    for scaled in scaled_objects.values():
        assert scaled["spec"]["scaleTargetRef"]["name"] in deployments


def test_services_without_a_consumer_group_scale_on_cpu(
    autoscalers: dict[str, Any], deployments: dict[str, Any], topics_read: dict[str, set[str]]
) -> None:
    """A service that reads without a group has no lag for KEDA to follow (a kafka trigger needs a
    group): a HorizontalPodAutoscaler scales its Deployment on CPU, from more than one pod."""
    assert GROUPLESS_SERVICES, "the gateway reads cairn.responses without a consumer group"
    assert set(autoscalers) == set(GROUPLESS_SERVICES)
    for name, hpa in autoscalers.items():
        assert topics_read[name], f"{name} reads topics (without a group)"
        spec = hpa["spec"]
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert name in deployments
        assert "replicas" not in deployments[name]["spec"], "the autoscaler owns the replica count"
        assert 2 <= spec["minReplicas"] <= spec["maxReplicas"]
        [metric] = spec["metrics"]
        assert metric["resource"]["name"] == "cpu"
        assert only_container(deployments[name])["resources"]["requests"]["cpu"], (
            "utilisation needs a request"
        )


@pytest.mark.parametrize("folder", sorted(GROUP_SERVICES))
def test_max_replicas_do_not_exceed_the_partitions_of_the_topics_named(
    scaled_objects: dict[str, Any], topic_files: dict[str, dict[str, Any]], folder: str
) -> None:
    scaled = scaled_objects[folder]
    named = [meta["topic"] for meta in kafka_triggers(scaled)]
    unknown = sorted(set(named) - set(topic_files))
    assert not unknown, f"{folder}: no topic file for {unknown}"
    widest = max(int(topic_files[topic]["partitions"]) for topic in named)
    assert scaled["spec"]["maxReplicaCount"] <= widest, (
        f"{folder}: maxReplicaCount {scaled['spec']['maxReplicaCount']} > {widest} partitions, "
        "the most KEDA would ever ask for"
    )


# --- SGLang and the topic Job ----------------------------------------------------------------------


def test_sglang_gets_one_gpu_and_serves_the_model_inference_asks_for(
    deployments: dict[str, Any], config_maps: dict[str, dict[str, str]], manifests: list[dict[str, Any]]
) -> None:
    sglang = deployments["sglang"]
    container = only_container(sglang)
    assert container["image"].startswith("lmsysorg/sglang:")
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["command"] == ["python3", "-m", "sglang.launch_server"]
    args = container["args"]
    assert "--enable-lora" in args
    assert args[args.index("--port") + 1] == "30000"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health", probe
    shm = {v["name"]: v for v in pod_spec(sglang)["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert shm[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"

    sglang_config = config_maps["sglang"]
    served = args[args.index("--served-model-name") + 1]
    assert served == "$(SGLANG_SERVED_MODEL_NAME)"
    inference = config_maps["cairn-inference"]
    assert inference["CAIRN_MODEL_NAME"] == sglang_config["SGLANG_SERVED_MODEL_NAME"]
    assert inference["CAIRN_INFERENCE_BACKEND"] == "sglang"
    service = objects(manifests, "Service")["sglang"]
    port = service["spec"]["ports"][0]["port"]
    assert inference["CAIRN_SGLANG_URL"] == f"http://sglang:{port}"


# --- Kafka TLS and SASL ----------------------------------------------------------------------------


def _strimzi_users() -> ModuleType:
    path = REPO_ROOT / "infra" / "kafka" / "strimzi_users.py"
    spec = importlib.util.spec_from_file_location("cairn_strimzi_users", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_kafka_client_connects_with_tls_and_scram(
    manifests: list[dict[str, Any]],
    config_maps: dict[str, dict[str, str]],
    example_secrets: dict[str, dict[str, str]],
) -> None:
    common = config_maps["cairn-common"]
    assert common["CAIRN_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert common["CAIRN_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    cafile = Path(common["CAIRN_KAFKA_SSL_CAFILE"])
    workloads = {doc["metadata"]["name"]: doc for doc in manifests if doc["kind"] in ("Deployment", "Job")}
    assert set(SERVICES) | {"cairn-topics"} <= set(workloads)
    for name, workload in workloads.items():
        if name not in SERVICES and name != "cairn-topics":
            continue
        container = only_container(workload)
        env = container_env(container, config_maps, example_secrets)
        assert env["CAIRN_KAFKA_SASL_USERNAME"] == (name if name == "cairn-topics" else f"cairn-{name}")
        assert "CHANGE_ME" in env["CAIRN_KAFKA_SASL_PASSWORD"], f"{name}: the password comes from its Secret"
        mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
        assert Path(mounts["kafka-ca"]) == cafile.parent, name
        assert volumes["kafka-ca"]["secret"]["secretName"] == "cairn-kafka-ca", name
    assert cafile.name in example_secrets["cairn-kafka-ca"]


def test_keda_scalers_authenticate_like_the_services(scaled_objects: dict[str, Any]) -> None:
    strimzi = _strimzi_users()
    docs = strimzi.documents(strimzi.load_topics(REPO_ROOT / "schemas"))
    [auth] = [doc for doc in docs if doc["kind"] == "TriggerAuthentication"]
    for scaled in scaled_objects.values():
        for trigger in scaled["spec"]["triggers"]:
            assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    secret = {ref["name"] for ref in auth["spec"]["secretTargetRef"]}
    assert secret == {"cairn-keda-kafka"}
    keys = load_docs(SECRETS_EXAMPLE)
    [keda] = [doc for doc in keys if doc["metadata"]["name"] == "cairn-keda-kafka"]
    assert {ref["key"] for ref in auth["spec"]["secretTargetRef"]} <= set(keda["stringData"])
    assert keda["stringData"]["sasl"] == "scram_sha512"
    assert keda["stringData"]["tls"] == "enable"


def test_strimzi_users_are_generated_from_the_topic_files() -> None:
    strimzi = _strimzi_users()
    assert strimzi.main(["--check"]) == 0, "run python infra/kafka/strimzi_users.py"


@pytest.mark.parametrize("folder", sorted(SERVICES))
def test_each_service_user_may_use_exactly_its_topics_and_group(
    topics_read: dict[str, set[str]], folder: str
) -> None:
    strimzi = _strimzi_users()
    topics = strimzi.load_topics(REPO_ROOT / "schemas")
    users = {doc["metadata"]["name"]: doc for doc in strimzi.documents(topics) if doc["kind"] == "KafkaUser"}
    user = users[f"cairn-{folder}"]
    assert user["spec"]["authentication"]["type"] == "scram-sha-512"
    acls = user["spec"]["authorization"]["acls"]
    readable = {
        a["resource"]["name"] for a in acls if "Read" in a["operations"] and a["resource"]["type"] == "topic"
    }
    writable = {a["resource"]["name"] for a in acls if "Write" in a["operations"]}
    assert topics_read[folder] <= readable, "a topic the service subscribes to is not readable"
    assert writable == {name for name, doc in topics.items() if folder in (doc.get("producers") or [])}
    assert "cairn.deadletter" in writable, "every consumer dead-letters"
    groups = [a for a in acls if a["resource"]["type"] == "group"]
    own_group = [
        {
            "resource": {"type": "group", "name": SERVICES[folder].group_id, "patternType": "literal"},
            "operations": ["Read", "Describe"],
        }
    ]
    assert groups == ([] if folder in GROUPLESS_SERVICES else own_group)
    prefixed = [a for a in acls if a["resource"]["patternType"] == "prefix"]
    assert all(a["operations"] == ["Describe"] for a in prefixed), "prefix ACLs only describe"


def test_topic_job_runs_the_topic_script_against_the_image_schemas(
    manifests: list[dict[str, Any]], config_maps: dict[str, dict[str, str]]
) -> None:
    job = objects(manifests, "Job")["cairn-topics"]
    container = only_container(job)
    assert container["image"].startswith(CAIRN_IMAGE)
    command = container["command"]
    assert command[:2] == ["python", "infra/kafka/create_topics.py"]
    args = dict(zip(command[2::2], command[3::2], strict=True))
    assert args["--schemas-dir"] == config_maps["cairn-common"]["CAIRN_SCHEMAS_DIR"]
    assert args["--bootstrap"] == "$(CAIRN_KAFKA_BOOTSTRAP)"
    assert int(args["--replication-factor"]) >= 1
    assert support.CREATE_TOPICS_SCRIPT.is_file()


# --- the real tool, when present ------------------------------------------------------------------


def test_kustomize_builds_the_manifests(validator: Any) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed")
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S_DIR)], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    built = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    kinds = {doc["kind"] for doc in built}
    assert {"Deployment", "ScaledObject", "ConfigMap", "Job", "Service"} <= kinds
    for doc in built:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "cairn", doc["metadata"]["name"]
        assert validator.errors(doc) == [], doc["metadata"]["name"]


@pytest.mark.parametrize("folder", sorted(SERVICES))
def test_each_service_signs_with_its_own_key_and_trusts_every_public_key(
    deployments: dict[str, Any], config_maps: dict[str, dict[str, str]], folder: str
) -> None:
    common = config_maps["cairn-common"]
    assert common["CAIRN_REQUIRE_SIGNATURES"] == "true"
    pod = pod_spec(deployments[folder])
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["signing-key"]["secret"]["secretName"] == f"cairn-{folder}-signing"  # its own only
    assert volumes["signing-trusted"]["configMap"]["name"] == "cairn-signing-trusted"
    mounts = {m["name"]: m["mountPath"] for m in only_container(deployments[folder])["volumeMounts"]}
    assert common["CAIRN_TRUSTED_KEYS_DIR"] == mounts["signing-trusted"]
    assert common["CAIRN_SIGNING_KEY_FILE"] == f"{mounts['signing-key']}/signing_key"
