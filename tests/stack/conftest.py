"""Helpers for the local-stack tests: isolated configs on ports that avoid the real profiles."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cairn_localstack import LocalStack, StackConfig

# local: 19092/15432/18333, test: +100. The integration stacks use +300 and +350.
INTEGRATION_OFFSET = 300
DURABLE_OFFSET = 350


def _make_config(root: Path, profile: str, offset: int, **overrides: object) -> StackConfig:
    values: dict[str, object] = {
        "profile": profile,
        "root_dir": root,
        "kafka_port": 19092 + offset,
        "pg_port": 15432 + offset,
        "s3_port": 18333 + offset,
    }
    values.update(overrides)
    return StackConfig(**values)  # type: ignore[arg-type]


def _group_members(pgid: int) -> list[int]:
    """Live processes whose process group is `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rfind(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CAIRN_STACK_* variable from the caller's shell."""
    for key in list(os.environ):
        if key.startswith("CAIRN_STACK_"):
            monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def make_config() -> Callable[..., StackConfig]:
    """make_config(root, profile, offset, **overrides): a config with every port at default + offset."""
    return _make_config


@pytest.fixture(scope="session")
def group_members() -> Callable[[int], list[int]]:
    """group_members(pgid): live processes of that process group."""
    return _group_members


def run_stack(config: StackConfig) -> Iterator[LocalStack]:
    """Up for the duration of a fixture, then down with purge (also on failure)."""
    stack = LocalStack(config)
    try:
        stack.up()
        yield stack
    finally:
        stack.down(purge=True)


@pytest.fixture(scope="session")
def stack_runner() -> Callable[[StackConfig], Iterator[LocalStack]]:
    return run_stack
