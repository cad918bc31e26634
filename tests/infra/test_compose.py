"""docker-compose.yml, its Dockerfile and init files agree with the code, the schemas and each other.

Fast and file-only; `docker compose config` runs too when the Docker CLI has the compose plugin.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml


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
CREATE_TOPICS_SCRIPT = support.CREATE_TOPICS_SCRIPT
DOCKERFILE = support.DOCKERFILE
NON_SETTINGS_ENV = support.NON_SETTINGS_ENV
REPO_ROOT = support.REPO_ROOT
SCHEMAS_DIR = support.SCHEMAS_DIR
SERVICES = support.SERVICES
ServiceInfo = support.ServiceInfo
dockerfile_env = support.dockerfile_env
image_is_pinned = support.image_is_pinned

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / "infra" / "compose.env.example"
POSTGRES_INIT = REPO_ROOT / "infra" / "postgres" / "init"
MINIO_INIT = REPO_ROOT / "infra" / "minio" / "init.sh"
PROMETHEUS_DIR = REPO_ROOT / "infra" / "prometheus"

HEALTH_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}

# --- compose variable interpolation (the subset of the Compose Specification the file uses) --------

_VAR = re.compile(
    r"\$\$"  # escaped dollar
    r"|\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|\$(?P<plain>[A-Za-z_][A-Za-z0-9_]*)"
)


class MissingVariableError(KeyError):
    """A `${VAR:?message}` whose variable is not set."""


def interpolate(value: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("plain")
        op, arg = match.group("op"), match.group("arg") or ""
        is_set, current = name in env, env.get(name, "")
        if op == ":-":
            return current if current else arg
        if op == "-":
            return current if is_set else arg
        if (op == ":?" and not current) or (op == "?" and not is_set):
            raise MissingVariableError(f"{name}: {arg}")
        if op == ":+":
            return arg if current else ""
        if op == "+":
            return arg if is_set else ""
        return current

    return _VAR.sub(replace, value)


def interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    return node


def read_env_file(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            env[name.strip()] = value.strip()
    return env


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def example_env() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def compose(raw_compose: dict[str, Any], example_env: dict[str, str]) -> dict[str, Any]:
    """The compose file with variables resolved from infra/compose.env.example."""
    return interpolate_tree(raw_compose, example_env)


@pytest.fixture(scope="module")
def compose_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def as_list(command: Any) -> list[str]:
    if isinstance(command, str):
        return command.split()
    return [str(part) for part in command or []]


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def depends_on(service: Mapping[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def cairn_service_names(compose_services: Mapping[str, Any]) -> dict[str, str]:
    """compose service name -> package, for services running `python -m cairn_*`."""
    found = {}
    for name, service in compose_services.items():
        command = as_list(service.get("command"))
        if command[:2] == ["python", "-m"] and len(command) > 2 and command[2].startswith("cairn_"):
            found[name] = command[2]
    return found


def one_shot_jobs(compose_services: Mapping[str, Any]) -> set[str]:
    """Services others wait on with service_completed_successfully."""
    return {
        target
        for service in compose_services.values()
        for target, condition in depends_on(service).items()
        if condition == "service_completed_successfully"
    }


# --- the file itself ------------------------------------------------------------------------------


def test_compose_file_parses_and_follows_the_compose_specification(raw_compose: dict[str, Any]) -> None:
    assert "version" not in raw_compose, "the Compose Specification has no top-level `version:`"
    assert isinstance(raw_compose.get("services"), dict)
    assert raw_compose["services"]


def test_example_env_resolves_every_required_variable(raw_compose: dict[str, Any]) -> None:
    """Every `${VAR:?...}` has a value in infra/compose.env.example (so `up` with a copy works)."""
    interpolate_tree(raw_compose, read_env_file(ENV_EXAMPLE))
    required = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?", COMPOSE_FILE.read_text()))
    assert required, "expected secrets to be required variables"
    missing = required - set(read_env_file(ENV_EXAMPLE))
    assert not missing, f"add to infra/compose.env.example: {sorted(missing)}"


def test_without_an_env_file_compose_refuses_to_start_without_secrets(raw_compose: dict[str, Any]) -> None:
    with pytest.raises(MissingVariableError):
        interpolate_tree(raw_compose, {})


# --- services <-> folders -------------------------------------------------------------------------


def test_every_service_folder_runs_in_compose_and_nothing_else(compose_services: dict[str, Any]) -> None:
    in_compose = cairn_service_names(compose_services)
    assert set(in_compose) == set(SERVICES), (
        f"compose runs {sorted(in_compose)}, services/ holds {sorted(SERVICES)}"
    )


@pytest.mark.parametrize("folder", sorted(SERVICES))
def test_service_command_runs_its_own_package(compose_services: dict[str, Any], folder: str) -> None:
    info = SERVICES[folder]
    assert as_list(compose_services[folder]["command"]) == ["python", "-m", info.package]
    assert importlib.util.find_spec(info.package) is not None
    assert importlib.util.find_spec(f"{info.package}.settings") is not None


@pytest.mark.parametrize("folder", sorted(SERVICES))
def test_service_env_names_are_fields_of_its_settings(compose_services: dict[str, Any], folder: str) -> None:
    info: ServiceInfo = SERVICES[folder]
    env = environment(compose_services[folder])
    not_cairn = sorted(name for name in env if not name.startswith("CAIRN_"))
    assert not not_cairn, f"{folder}: only CAIRN_* settings go to a service, got {not_cairn}"
    unknown = sorted(set(env) - info.env_names - NON_SETTINGS_ENV)
    assert not unknown, f"{folder}: {unknown} are not fields of {info.package}.settings.Settings"


@pytest.mark.parametrize("folder", sorted(SERVICES))
def test_service_env_values_build_its_settings(
    compose_services: dict[str, Any], folder: str, settings_env: Any
) -> None:
    """The values (resolved from the example env file) validate, and the group is cairn-<service>."""
    info = SERVICES[folder]
    settings_env(environment(compose_services[folder]))
    settings = info.settings_class()
    assert settings.group_id == info.group_id
    assert settings.kafka_session_timeout_ms >= 6000, "Apache Kafka rejects session timeouts below 6000 ms"
    assert settings.kafka_bootstrap == "kafka:9092"


@pytest.mark.parametrize("folder", sorted(SERVICES))
def test_service_schemas_dir_is_the_one_in_the_image(compose_services: dict[str, Any], folder: str) -> None:
    image_dir = dockerfile_env()["CAIRN_SCHEMAS_DIR"]
    assert environment(compose_services[folder]).get("CAIRN_SCHEMAS_DIR") == image_dir


@pytest.mark.parametrize("folder", sorted(SERVICES))
def test_service_is_built_from_the_cairn_dockerfile(raw_compose: dict[str, Any], folder: str) -> None:
    build = raw_compose["services"][folder]["build"]
    assert (REPO_ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE


@pytest.mark.parametrize("folder", sorted(SERVICES))
def test_service_waits_for_the_bus_and_its_topics(compose_services: dict[str, Any], folder: str) -> None:
    deps = depends_on(compose_services[folder])
    assert deps.get("kafka") == "service_healthy"
    assert deps.get("kafka-init") == "service_completed_successfully"


def test_services_that_own_tables_wait_for_postgres(compose_services: dict[str, Any]) -> None:
    for folder in SERVICES:
        env = environment(compose_services[folder])
        if "CAIRN_POSTGRES_DSN" in env:
            assert depends_on(compose_services[folder]).get("postgres") == "service_healthy", folder
        if "CAIRN_S3_ENDPOINT" in env:
            assert depends_on(compose_services[folder]).get("minio-init") == "service_completed_successfully"


# --- dependencies, images, healthchecks -----------------------------------------------------------


def test_every_depends_on_target_exists(compose_services: dict[str, Any]) -> None:
    for name, service in compose_services.items():
        for target, condition in depends_on(service).items():
            assert target in compose_services, f"{name} depends on unknown service {target}"
            assert condition in HEALTH_CONDITIONS, f"{name} -> {target}: unknown condition {condition}"
            if condition == "service_healthy":
                assert "healthcheck" in compose_services[target], f"{target} has no healthcheck to wait for"


def test_one_shot_jobs_do_not_restart(compose_services: dict[str, Any]) -> None:
    jobs = one_shot_jobs(compose_services)
    assert {"kafka-init", "minio-init"} <= jobs
    for job in jobs:
        assert str(compose_services[job].get("restart", "no")) == "no", f"{job} must not restart"


def test_every_image_is_pinned(compose_services: dict[str, Any]) -> None:
    for name, service in compose_services.items():
        image = service.get("image")
        assert image, f"{name} has no image (a built service needs a tagged image name too)"
        assert image_is_pinned(image), f"{name}: image {image!r} is not pinned to a tag"


def test_every_infrastructure_container_has_a_healthcheck(compose_services: dict[str, Any]) -> None:
    cairn = set(cairn_service_names(compose_services))
    infra = set(compose_services) - cairn - one_shot_jobs(compose_services)
    assert {"kafka", "postgres", "minio", "weaviate", "sglang"} <= infra
    for name in infra:
        check = compose_services[name].get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert check.get("test"), f"{name} has no healthcheck test"
        assert not check.get("disable"), f"{name} disables its healthcheck"


def test_bind_mounted_files_exist(compose_services: dict[str, Any]) -> None:
    for name, service in compose_services.items():
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith("."):
                assert (REPO_ROOT / source).exists(), f"{name} mounts missing {source}"


def test_named_volumes_are_declared(raw_compose: dict[str, Any]) -> None:
    declared = set(raw_compose.get("volumes") or {})
    for name, service in raw_compose["services"].items():
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if source and not source.startswith((".", "/")):
                assert source in declared, f"{name} uses undeclared volume {source}"


def test_secrets_come_from_the_env_file(raw_compose: dict[str, Any]) -> None:
    """No literal password, secret or token in docker-compose.yml: all are ${VARIABLES}."""
    for name, service in raw_compose["services"].items():
        env = service.get("environment") or {}
        for key, value in env.items():
            if re.search(r"PASSWORD|SECRET|TOKEN", key):
                assert str(value).startswith("${"), f"{name}.{key} is a literal"
            if key.endswith("_DSN"):
                dsn = interpolate(str(value), {"POSTGRES_USER": "u", "POSTGRES_PASSWORD": "SENTINEL"})
                assert ":SENTINEL@" in dsn, f"{name}.{key} must take its password from POSTGRES_PASSWORD"
    example = read_env_file(ENV_EXAMPLE)
    for key in ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "CAIRN_S3_SECRET_KEY"):
        assert example[key] == "CHANGE_ME", f"infra/compose.env.example must not carry a real {key}"


def test_the_real_env_file_is_ignored_by_git() -> None:
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    result = subprocess.run(
        ["git", "check-ignore", "-q", "infra/compose.env"], cwd=REPO_ROOT, capture_output=True, check=False
    )
    if result.returncode == 128:
        pytest.skip("not a git checkout")
    assert result.returncode == 0, "infra/compose.env holds secrets and must be git-ignored"


# --- Kafka ----------------------------------------------------------------------------------------


def test_kafka_is_a_single_kraft_node_without_auto_created_topics(compose_services: dict[str, Any]) -> None:
    kafka = compose_services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = environment(kafka)
    node_id = env["KAFKA_NODE_ID"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{node_id}@kafka:9093"
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"].split(",")
    assert "CONTROLLER://:9093" in env["KAFKA_LISTENERS"].split(",")
    assert "INTERNAL://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert env["CLUSTER_ID"], "the apache/kafka image needs CLUSTER_ID in KRaft mode"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert env[key] == "1", key
    listeners = {item.split("://", 1)[0] for item in env["KAFKA_LISTENERS"].split(",")}
    mapped = {item.split(":", 1)[0] for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")}
    assert listeners <= mapped


def test_kafka_clients_connect_only_through_sasl_ssl(compose_services: dict[str, Any]) -> None:
    env = environment(compose_services["kafka"])
    protocols = dict(item.split(":", 1) for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    controllers = set(env["KAFKA_CONTROLLER_LISTENER_NAMES"].split(","))
    advertised = {item.split("://", 1)[0] for item in env["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    assert not advertised & controllers
    assert {protocols[name] for name in advertised} == {"SASL_SSL"}
    # the image's start script misreads listener names containing "SSL" (it then wants JKS files)
    assert "SSL" not in "".join(advertised)
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    for name in advertised:
        mechanisms = env[f"KAFKA_LISTENER_NAME_{name}_SASL_ENABLED_MECHANISMS"].split(",")
        assert "SCRAM-SHA-512" in mechanisms, name
        assert "ScramLoginModule" in env[f"KAFKA_LISTENER_NAME_{name}_SCRAM___SHA___512_SASL_JAAS_CONFIG"]
    keystore = env["KAFKA_SSL_KEYSTORE_LOCATION"]
    mounts = dict(v.split(":")[:2][::-1] for v in compose_services["kafka"]["volumes"] if v.startswith("."))
    assert any(keystore.startswith(target + "/") for target in mounts), "the broker keystore is not mounted"
    assert "admin-client.sh" in " ".join(compose_services["kafka"]["healthcheck"]["test"])


@pytest.mark.parametrize("folder", sorted(SERVICES))
def test_service_connects_as_its_own_scram_user_trusting_the_mounted_ca(
    raw_compose: dict[str, Any], compose_services: dict[str, Any], folder: str
) -> None:
    env = environment(compose_services[folder])
    assert env["CAIRN_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["CAIRN_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert env["CAIRN_KAFKA_SASL_USERNAME"] == f"cairn-{folder}"
    var = f"CAIRN_KAFKA_USER_{folder.upper().replace('-', '_')}_PASSWORD"
    password = str(raw_compose["services"][folder]["environment"]["CAIRN_KAFKA_SASL_PASSWORD"])
    assert password.startswith(f"${{{var}:?")
    assert read_env_file(ENV_EXAMPLE)[var] == "CHANGE_ME"
    cafile = Path(env["CAIRN_KAFKA_SSL_CAFILE"])
    mounts = [v.split(":") for v in compose_services[folder].get("volumes") or []]
    sources = [src for src, target, *_ in mounts if Path(target) == cafile.parent]
    assert sources == ["./infra/kafka/tls/public"]
    assert depends_on(compose_services[folder]).get("kafka-users") == "service_completed_successfully"


def test_kafka_users_makes_a_user_for_every_service(compose_services: dict[str, Any]) -> None:
    job = compose_services["kafka-users"]
    assert sorted(as_list(job["command"])) == sorted(SERVICES)
    env = environment(job)
    for folder in SERVICES:
        assert f"CAIRN_KAFKA_USER_{folder.upper().replace('-', '_')}_PASSWORD" in env, folder
    assert "CAIRN_KAFKA_ADMIN_PASSWORD" in env
    assert depends_on(job) == {"kafka": "service_healthy"}
    script = (REPO_ROOT / "infra/kafka/kafka-users.sh").read_text(encoding="utf-8")
    assert "SCRAM-SHA-512=[" in script
    assert "--entity-type users" in script
    init = environment(compose_services["kafka-init"])
    assert init["CAIRN_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert init["CAIRN_KAFKA_SASL_USERNAME"] == "admin"


@pytest.fixture
def made_certs(tmp_path: Path) -> Path:
    """What infra/kafka/make-certs.sh makes, in tmp_path, plus the broker's key and certificate as
    PEM (b.key, b.pem) taken out of its PKCS#12 keystore."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, pkcs12

    env = {
        "PATH": "/usr/bin:/bin",
        "KAFKA_TLS_DIR": str(tmp_path),
        "KAFKA_SSL_KEYSTORE_PASSWORD": "test-pass",
    }
    script = REPO_ROOT / "infra/kafka/make-certs.sh"
    subprocess.run(["sh", str(script)], env=env, check=True, capture_output=True)
    keystore = (tmp_path / "broker/broker.p12").read_bytes()
    key, cert, _ = pkcs12.load_key_and_certificates(keystore, b"test-pass")
    assert key is not None
    assert cert is not None
    (tmp_path / "b.key").write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    (tmp_path / "b.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    return tmp_path


async def test_make_certs_gives_a_broker_certificate_the_services_accept(made_certs: Path) -> None:
    """infra/kafka/make-certs.sh's CA and broker keystore, served over TLS, pass the services' check
    (cairn_bus.kafka.client_options with CAIRN_KAFKA_SSL_CAFILE) for the names clients use."""
    import asyncio
    import ssl

    from cairn_bus.kafka import client_options
    from cairn_bus.settings import ServiceSettings
    from cairn_testing.kafka_tls import TlsProxy

    proxy = TlsProxy(made_certs / "b.pem", made_certs / "b.key", ("127.0.0.1", 9))
    await proxy.start()
    try:
        cafile = str(made_certs / "public/ca.pem")
        settings = ServiceSettings(kafka_security_protocol="SSL", kafka_ssl_cafile=cafile)
        context = client_options(settings)["ssl_context"]
        for name in ("kafka", "localhost", "127.0.0.1"):
            _, writer = await asyncio.open_connection(
                "127.0.0.1", proxy.port, ssl=context, server_hostname=name
            )
            writer.close()
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection(
                "127.0.0.1", proxy.port, ssl=context, server_hostname="kafka.example"
            )
    finally:
        await proxy.stop()


def kafka_init_args(compose_services: dict[str, Any]) -> dict[str, str]:
    command = as_list(compose_services["kafka-init"]["command"])
    assert command[:2] == ["python", "infra/kafka/create_topics.py"], command
    args = command[2:]
    return dict(zip(args[::2], args[1::2], strict=True))


def test_kafka_init_runs_the_topic_script_against_the_image_schemas(compose_services: dict[str, Any]) -> None:
    args = kafka_init_args(compose_services)
    assert args["--bootstrap"] == "kafka:9092"
    assert args["--schemas-dir"] == dockerfile_env()["CAIRN_SCHEMAS_DIR"]
    assert args["--replication-factor"] == "1"
    assert depends_on(compose_services["kafka-init"]) == {"kafka": "service_healthy"}
    assert CREATE_TOPICS_SCRIPT.is_file()


def test_kafka_init_creates_exactly_the_topics_of_schemas_topics(
    create_topics: Any, topic_files: dict[str, dict[str, Any]]
) -> None:
    plan = create_topics.load_topic_plan(SCHEMAS_DIR)
    assert {name: topic.partitions for name, topic in plan.items()} == {
        name: doc["partitions"] for name, doc in topic_files.items()
    }
    for name, doc in topic_files.items():
        if "retention_ms" in doc:
            expected = "-1" if doc["retention_ms"] is None else str(doc["retention_ms"])
            assert plan[name].config.get("retention.ms") == expected, name


def test_kafka_init_agrees_with_the_event_registry(create_topics: Any, topic_files: Any) -> None:
    """The script and cairn_events.load_topics read the same topics, partitions and retention."""
    topics_module = pytest.importorskip("cairn_events.topics")
    if not hasattr(topics_module, "load_topics"):
        pytest.skip("cairn_events.topics.load_topics not available")
    registry = topics_module.load_topics(SCHEMAS_DIR / "topics")
    plan = create_topics.load_topic_plan(SCHEMAS_DIR)
    assert {n: s.partitions for n, s in registry.items()} == {n: t.partitions for n, t in plan.items()}
    for name, spec in registry.items():
        expected = "-1" if spec.retention_ms is None else str(spec.retention_ms)
        assert plan[name].config.get("retention.ms") == expected, name


def test_create_topics_dry_run_prints_the_plan(topic_files: dict[str, dict[str, Any]]) -> None:
    result = subprocess.run(
        [sys.executable, str(CREATE_TOPICS_SCRIPT), "--schemas-dir", str(SCHEMAS_DIR), "--dry-run"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    printed = dict(line.split() for line in result.stdout.splitlines())
    assert printed == {name: str(doc["partitions"]) for name, doc in topic_files.items()}


def test_create_topics_rejects_a_topic_file_without_partitions(create_topics: Any, tmp_path: Path) -> None:
    (tmp_path / "topics").mkdir()
    (tmp_path / "topics" / "cairn.broken.yaml").write_text("name: cairn.broken\n")
    with pytest.raises(ValueError, match="partitions"):
        create_topics.load_topic_plan(tmp_path)


# --- image ----------------------------------------------------------------------------------------


def test_dockerfile_builds_a_python_311_slim_non_root_image_with_the_schemas() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)
    assert base, "the base image is the PYTHON_IMAGE build argument"
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", base[1]), "pin a python:3.11.x-slim image"
    assert re.search(r"^COPY schemas/ /app/schemas/$", text, re.MULTILINE)
    assert dockerfile_env()["CAIRN_SCHEMAS_DIR"] == "/app/schemas"
    users = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert users, "the image must set USER"
    assert users[-1].split(":")[0] not in {"root", "0"}, "the image must run as a non-root user"
    assert "requirements/constraints.txt" in text, "install with the constraints file"
    assert re.search(r"^COPY libs/ ", text, re.MULTILINE)
    assert re.search(r"^COPY services/ ", text, re.MULTILINE)


def test_dockerfile_installs_every_service_and_its_libraries() -> None:
    """The Dockerfile installs exactly the closure of the services' local dependencies, read from their
    pyproject.toml files (tests/infra/_image.py): every service, every library one needs through another,
    and no development package (the CLI, the local stack, the test helpers)."""
    spec = importlib.util.spec_from_file_location(
        "cairn_tests_infra_image", Path(__file__).with_name("_image.py")
    )
    assert spec is not None
    assert spec.loader is not None
    image = sys.modules.setdefault("cairn_tests_infra_image", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(image)
    closure = {str(folder.relative_to(REPO_ROOT)) for folder in image.image_closure().values()}
    assert {f"services/{folder}" for folder in SERVICES} <= closure
    assert {"libs/cairn-events", "libs/cairn-observability", "libs/cairn-bus", "libs/cairn-auth"} <= closure
    installed = image.dockerfile_installs()
    assert len(installed) == len(set(installed)), "a package is installed twice"
    assert set(installed) - closure == set(), "the image installs a package no service needs"
    assert closure - set(installed) == set(), "the image misses a package a service needs"


def test_dockerignore_keeps_secrets_out_and_the_topic_script_in() -> None:
    ignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    assert "infra/compose.env" in ignore
    assert "infra/kafka/tls" in ignore  # the CA and broker keys make-certs.sh makes
    assert ".venv" in ignore
    assert not any(entry in ("infra", "infra/kafka", "schemas", "libs", "services") for entry in ignore)


# --- PostgreSQL, MinIO, Weaviate, SGLang -----------------------------------------------------------


def test_postgres_init_creates_every_database_a_service_uses(compose_services: dict[str, Any]) -> None:
    sql = "\n".join(p.read_text(encoding="utf-8") for p in sorted(POSTGRES_INIT.glob("*.sql")))
    created = set(re.findall(r"CREATE DATABASE (\w+);", sql))
    used = {}
    for folder in SERVICES:
        dsn = environment(compose_services[folder]).get("CAIRN_POSTGRES_DSN")
        if dsn:
            assert dsn.split("@", 1)[1].startswith("postgres:5432/"), dsn
            used[folder] = dsn.rsplit("/", 1)[1]
    assert used, "no service gets a PostgreSQL DSN"
    assert set(used.values()) <= created, f"not created: {set(used.values()) - created}"
    assert len(set(used.values())) == len(used), "each service owns its own database"
    assert re.search(r"CREATE EXTENSION IF NOT EXISTS vector", sql)
    assert compose_services["postgres"]["image"].startswith("pgvector/pgvector:")


def test_minio_init_creates_the_bucket_and_user_the_services_use(compose_services: dict[str, Any]) -> None:
    init_env = environment(compose_services["minio-init"])
    script = MINIO_INIT.read_text(encoding="utf-8")
    assert "mc mb --ignore-existing" in script
    assert "mc admin user add" in script
    for folder in SERVICES:
        env = environment(compose_services[folder])
        if "CAIRN_S3_ENDPOINT" in env:
            assert env["CAIRN_S3_ENDPOINT"] == "minio:9000"
            assert env["CAIRN_S3_BUCKET"] == init_env["CAIRN_S3_BUCKET"]
            assert env["CAIRN_S3_ACCESS_KEY"] == init_env["CAIRN_S3_ACCESS_KEY"]
    assert compose_services["minio"]["environment"]["MINIO_ROOT_USER"] != init_env["CAIRN_S3_ACCESS_KEY"]


def test_retriever_uses_the_compose_weaviate(compose_services: dict[str, Any]) -> None:
    env = environment(compose_services["retriever"])
    assert env["CAIRN_VECTOR_STORE"] == "weaviate"
    assert env["CAIRN_WEAVIATE_URL"] == "http://weaviate:8080"
    weaviate = environment(compose_services["weaviate"])
    assert weaviate["DEFAULT_VECTORIZER_MODULE"] == "none"
    assert weaviate["PERSISTENCE_DATA_PATH"] == "/var/lib/weaviate"
    assert compose_services["weaviate"]["image"].startswith("cr.weaviate.io/semitechnologies/weaviate:")


def test_sglang_runs_on_an_nvidia_gpu_with_lora(compose_services: dict[str, Any]) -> None:
    sglang = compose_services["sglang"]
    assert sglang["image"].startswith("lmsysorg/sglang:")
    assert as_list(sglang["entrypoint"]) == ["python3", "-m", "sglang.launch_server"]
    args = as_list(sglang["command"])
    assert args[args.index("--host") + 1] == "0.0.0.0"
    assert args[args.index("--port") + 1] == "30000"
    for flag in ("--model-path", "--enable-lora", "--max-lora-rank", "--lora-target-modules"):
        assert flag in args, flag
    devices = sglang["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices)
    assert sglang.get("shm_size")
    assert "/health" in " ".join(as_list(sglang["healthcheck"]["test"]))
    assert any(str(v).endswith(":/root/.cache/huggingface") for v in sglang.get("volumes", []))

    inference = environment(compose_services["inference"])
    assert inference["CAIRN_INFERENCE_BACKEND"] == "sglang"
    assert inference["CAIRN_SGLANG_URL"] == "http://sglang:30000"
    assert args[args.index("--served-model-name") + 1] == inference["CAIRN_MODEL_NAME"]


def test_prometheus_scrapes_every_service_and_its_rules_parse(compose_services: dict[str, Any]) -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    names = {name for sd in jobs["cairn"]["dns_sd_configs"] for name in sd["names"]}
    assert names == set(SERVICES)
    ports = {sd["port"] for sd in jobs["cairn"]["dns_sd_configs"]}
    for folder in SERVICES:
        assert {int(environment(compose_services[folder])["CAIRN_METRICS_PORT"])} == ports
    for rules_file in (PROMETHEUS_DIR / "rules").glob("*.yml"):
        groups = yaml.safe_load(rules_file.read_text(encoding="utf-8"))["groups"]
        assert all(rule.get("alert") and rule.get("expr") for g in groups for rule in g["rules"])


# --- the real tool, when present ------------------------------------------------------------------


def _compose_cli() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_docker_compose_config_accepts_the_file() -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no `docker compose` plugin or docker-compose binary on this machine")
    result = subprocess.run(
        [*cli, "-f", str(COMPOSE_FILE), "--env-file", str(ENV_EXAMPLE), "config", "-q"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


# --- signing keys and the master key (docs/security-signing.md, docs/security-encryption.md) -------


def test_every_service_signs_with_its_own_key_and_trusts_the_public_keys(
    raw_compose: dict[str, Any], compose_services: dict[str, Any]
) -> None:
    secrets = raw_compose["secrets"]
    for name in SERVICES:
        service = compose_services[name]
        [secret] = [s for s in service.get("secrets") or [] if isinstance(s, dict)]
        assert secret == {"source": f"signing_key_{name}", "target": "signing_key"}, name
        assert secrets[f"signing_key_{name}"] == {"file": f"./infra/signing/private/{name}.pem"}
        env = service["environment"]
        assert env["CAIRN_SIGNING_KEY_FILE"] == "/run/secrets/signing_key"
        assert env["CAIRN_REQUIRE_SIGNATURES"] == "true"
        trusted = env["CAIRN_TRUSTED_KEYS_DIR"]
        assert f"./infra/signing/trusted:{trusted}:ro" in service["volumes"], name


def test_make_keys_makes_keys_the_services_sign_and_verify_with(tmp_path: Path) -> None:
    from cairn_bus.signing import KeyRing, Signer

    script = REPO_ROOT / "infra" / "signing" / "make-keys.sh"
    subprocess.run(["sh", str(script), str(tmp_path)], check=True, capture_output=True)
    ring = KeyRing.from_dir(tmp_path / "trusted")
    owners = {key.owner for key in ring.keys.values()}
    assert owners == {*SERVICES, "cli"}
    private = tmp_path / "private" / "evaluator.pem"
    assert private.stat().st_mode & 0o077 == 0  # the private key is readable by its owner only
    signer = Signer.from_pem(private.read_bytes())
    headers = signer.sign([("ce_type", b"cairn.model.promoted.v1"), ("ce_id", b"e-1")], b"{}")
    assert ring.verify("cairn.model.promoted.v1", headers, b"{}").owner == "evaluator"
    before = {p.name: p.read_bytes() for p in (tmp_path / "private").iterdir()}
    subprocess.run(["sh", str(script), str(tmp_path)], check=True, capture_output=True)
    assert {p.name: p.read_bytes() for p in (tmp_path / "private").iterdir()} == before  # kept


def test_the_services_holding_tenant_data_get_the_master_key(raw_compose: dict[str, Any]) -> None:
    for name in ("audit", "feedback", "safety", "tuner", "evaluator"):
        env = raw_compose["services"][name]["environment"]
        assert env["CAIRN_MASTER_KEY"].startswith("${CAIRN_MASTER_KEY:?")
    assert read_env_file(ENV_EXAMPLE)["CAIRN_MASTER_KEY"] == "CHANGE_ME"


def test_the_gateways_console_gets_its_session_secret_and_the_apis_it_reads(
    raw_compose: dict[str, Any],
) -> None:
    env = raw_compose["services"]["gateway"]["environment"]
    assert env["CAIRN_CONSOLE_SECRET"].startswith("${CAIRN_CONSOLE_SECRET:?")
    assert read_env_file(ENV_EXAMPLE)["CAIRN_CONSOLE_SECRET"] == "CHANGE_ME"
    for variable, service in (("CAIRN_GATEWAY_AUDIT_URL", "audit"), ("CAIRN_GATEWAY_SAFETY_URL", "safety")):
        port = raw_compose["services"][service]["environment"]["CAIRN_HTTP_PORT"]
        assert env[variable] == f"http://{service}:{port}"
