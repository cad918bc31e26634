"""StackConfig: defaults, profiles, environment, derived ports and service environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from cairn_localstack import StackConfig
from cairn_localstack.config import S3_PORT_OFFSETS, find_repo_root

pytestmark = pytest.mark.usefixtures("clean_env")

REPO = Path(__file__).resolve().parents[2]


def test_repo_root_is_found_from_the_package() -> None:
    assert find_repo_root() == REPO
    assert (REPO / "libs").is_dir()


def test_defaults() -> None:
    c = StackConfig()
    assert (c.profile, c.host, c.broker_storage) == ("local", "127.0.0.1", "s3")
    assert (c.kafka_port, c.pg_port, c.s3_port) == (19092, 15432, 18333)
    assert (c.pg_user, c.pg_database, c.broker_bucket) == ("cairn", "cairn", "tansu")
    assert (c.s3_access_key, c.s3_secret_key) == ("cairn", "cairn-local-secret")
    assert c.root_dir == REPO / ".cairn" / "local"


def test_test_profile_offsets_ports_and_uses_memory() -> None:
    c = StackConfig.for_profile("test")
    assert (c.kafka_port, c.pg_port, c.s3_port) == (19192, 15532, 18433)
    assert c.broker_storage == "memory"
    assert c.root_dir == REPO / ".cairn" / "test"


def test_environment_overrides_profile_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAIRN_STACK_PROFILE", "test")
    monkeypatch.setenv("CAIRN_STACK_KAFKA_PORT", "29999")
    monkeypatch.setenv("CAIRN_STACK_BROKER_STORAGE", "s3")
    c = StackConfig()
    assert (c.profile, c.kafka_port, c.broker_storage, c.pg_port) == ("test", 29999, "s3", 15532)


def test_arguments_override_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CAIRN_STACK_PG_PORT", "20000")
    monkeypatch.setenv("CAIRN_STACK_ROOT_DIR", str(tmp_path / "from-env"))
    assert StackConfig().root_dir == tmp_path / "from-env"
    assert StackConfig.for_profile("test", pg_port=20001).pg_port == 20001


def test_relative_root_dir_becomes_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert StackConfig(root_dir=Path("here")).root_dir == tmp_path / "here"


def test_s3_ports_are_derived_from_the_base() -> None:
    ports = StackConfig(s3_port=20000).s3_ports
    assert ports["s3"] == 20000
    assert sorted(ports.values()) == [*range(20000, 20009), 30008]
    assert set(ports) == set(S3_PORT_OFFSETS)
    with pytest.raises(ValueError, match="s3_port"):
        StackConfig(s3_port=65535)


def test_service_env() -> None:
    env = StackConfig.for_profile("test").service_env()
    assert env == {
        "CAIRN_KAFKA_BOOTSTRAP": "127.0.0.1:19192",
        "CAIRN_POSTGRES_DSN": "postgresql://cairn@127.0.0.1:15532/cairn",
        "CAIRN_S3_ENDPOINT": "127.0.0.1:18433",
        "CAIRN_S3_ACCESS_KEY": "cairn",
        "CAIRN_S3_SECRET_KEY": "cairn-local-secret",
        "CAIRN_S3_SECURE": "false",
        # the development master key (docs/security-encryption.md): audit and feedback encrypt with it
        "CAIRN_MASTER_KEY": StackConfig().master_key,
    }
