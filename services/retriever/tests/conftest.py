"""Shared fixtures of the retriever's tests: the real MiniLM (loaded once per session) and fakes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from cairn_retriever.adapters.memory import HashingEmbedder, InMemoryVectorStore


def load_sibling(name: str) -> ModuleType:
    """A helper module beside the tests (pytest's importlib mode does not import test siblings)."""
    qualified = f"cairn_retriever_tests_{name}"
    if qualified not in sys.modules:
        spec = importlib.util.spec_from_file_location(qualified, Path(__file__).with_name(f"{name}.py"))
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[qualified] = module
        spec.loader.exec_module(module)
    return sys.modules[qualified]


@pytest.fixture(scope="session")
def minilm():  # type: ignore[no-untyped-def]
    """all-MiniLM-L6-v2 on one torch thread, loaded once for the whole session."""
    from cairn_embedding import MiniLMEmbedder

    return MiniLMEmbedder(threads=1, eager=True)


@pytest.fixture
def embedder() -> HashingEmbedder:
    """The deterministic fake embedder."""
    return HashingEmbedder()


@pytest.fixture
def memory_store() -> InMemoryVectorStore:
    """An empty in-memory vector store."""
    return InMemoryVectorStore()
