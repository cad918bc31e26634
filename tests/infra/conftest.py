"""Fixtures of the deployment tests (helpers live in _support.py, loaded by path)."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


def load_support() -> ModuleType:
    """tests/infra/_support.py, imported once under a name of its own."""
    name = "cairn_tests_infra_support"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("_support.py"))
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


support = load_support()


@pytest.fixture(scope="session")
def topic_files() -> dict[str, dict[str, Any]]:
    """schemas/topics/*.yaml as dicts by topic name; skips while the folder is still empty."""
    topics: dict[str, dict[str, Any]] = support.read_topic_files()
    if not topics:
        pytest.skip("schemas/topics/*.yaml not written yet")
    return topics


@pytest.fixture(scope="session")
def create_topics() -> ModuleType:
    """infra/kafka/create_topics.py as a module."""
    module: ModuleType = support.load_create_topics()
    return module


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[Mapping[str, str]], None]:
    """Replace every CAIRN_* variable of this process with the given ones (to build Settings())."""

    def apply(env: Mapping[str, str]) -> None:
        for name in list(os.environ):
            if name.startswith("CAIRN_"):
                monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)

    return apply
