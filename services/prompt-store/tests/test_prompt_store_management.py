"""Management operations shared by the CLI and the API, on the in-memory store."""

from __future__ import annotations

import pytest

from cairn_events import ChatMessage
from cairn_prompt_store import management
from cairn_prompt_store.adapters.memory import InMemoryPromptStore
from cairn_prompt_store.domain.errors import (
    ExperimentNotFoundError,
    InvalidPromptError,
    InvalidReferenceError,
    LabelNotFoundError,
    PromptNotFoundError,
    VersionNotFoundError,
)
from cairn_prompt_store.domain.experiments import Experiment, Variant
from cairn_prompt_store.domain.spec import PromptSpec

from .conftest import spec


@pytest.fixture
def store() -> InMemoryPromptStore:
    return InMemoryPromptStore()


async def test_push_moves_labels_and_dedupes(store: InMemoryPromptStore) -> None:
    first = await management.push(store, spec(), ["dev", "production"], by="ana")
    assert (first.result.version.version, first.result.created) == (1, True)
    assert [(m.label, m.version, m.previous) for m in first.moves] == [
        ("dev", 1, None),
        ("production", 1, None),
    ]
    again = await management.push(store, spec(), ["staging"], by="ben")
    assert (again.result.version.version, again.result.created) == (1, False)
    assert await store.labels("greet") == {"dev": 1, "production": 1, "staging": 1}


async def test_push_refuses_bad_templates_and_labels_before_storing(store: InMemoryPromptStore) -> None:
    bad = PromptSpec.model_validate({"name": "b", "messages": [{"role": "user", "content": "{{ x }}"}]})
    with pytest.raises(InvalidPromptError, match="uses undeclared variable"):
        await management.push(store, bad)
    with pytest.raises(InvalidReferenceError, match="invalid label '42'"):
        await management.push(store, spec(), ["42"])
    assert await store.prompts() == []


async def test_label_moves_need_a_known_prompt_and_version(store: InMemoryPromptStore) -> None:
    with pytest.raises(PromptNotFoundError, match="unknown prompt 'greet'"):
        await management.move_label(store, "greet", 1, "production", "ana")
    await management.push(store, spec())
    with pytest.raises(VersionNotFoundError, match="no version 2"):
        await management.move_label(store, "greet", 2, "production", "ana")
    move = await management.move_label(store, "greet", 1, "production", "ana")
    assert (move.label, move.version, move.moved_by) == ("production", 1, "ana")


async def test_show_resolves_without_experiments(store: InMemoryPromptStore) -> None:
    await management.push(store, spec(), ["production"])
    await management.push(store, spec(description="2"), ["staging"])
    await management.set_experiment(
        store, Experiment(name="e", prompt="greet", variants=[Variant(name="s", label="staging")]), "ana"
    )
    shown = await management.show(store, "greet")
    assert (shown.version.version, shown.label, shown.experiment) == (1, "production", None)
    with pytest.raises(LabelNotFoundError, match="prompt 'greet' has no label 'dev'"):
        await management.show(store, "greet@dev")
    with pytest.raises(InvalidReferenceError):
        await management.show(store, "greet@")


async def test_diff_shows_changed_template_lines(store: InMemoryPromptStore) -> None:
    await management.push(store, spec())
    changed = spec(
        messages=[
            {"role": "system", "content": "Be {{ mood }}.\nKeep it short."},
            {"role": "user", "content": "Say hello to {{ who }}."},
        ]
    )
    await management.push(store, changed)
    text = await management.diff(store, "greet", 1, 2)
    assert text.startswith("--- greet:1\n+++ greet:2\n")
    assert "-  content: Be {{ mood }}.\n" in text
    assert "+  content: |-\n+    Be {{ mood }}.\n+    Keep it short.\n" in text
    assert await management.diff(store, "greet", 2, 2) == ""
    with pytest.raises(VersionNotFoundError):
        await management.diff(store, "greet", 1, 3)


async def test_preview_renders_like_a_request(store: InMemoryPromptStore, qa_spec: PromptSpec) -> None:
    await management.push(store, qa_spec, ["production"])
    p = await management.preview(
        store, "qa", {"topic": "io"}, [ChatMessage(role="user", content="How do I open a file?")]
    )
    assert (p.version.version, p.resolution.label) == (1, "production")
    assert p.rendered.messages[-1].content == "How do I open a file?"
    assert p.rendered.retrieval is not None
    assert p.rendered.retrieval.query == "io: How do I open a file?"


async def test_experiments_are_checked_against_the_store(store: InMemoryPromptStore) -> None:
    exp = Experiment(
        name="e", prompt="greet", variants=[Variant(name="a", version=1), Variant(name="b", label="x")]
    )
    with pytest.raises(PromptNotFoundError, match="unknown prompt 'greet'"):
        await management.set_experiment(store, exp, "ana")
    await management.push(store, spec(), ["production"])
    with pytest.raises(LabelNotFoundError, match="variant 'b': prompt 'greet' has no label 'x'"):
        await management.set_experiment(store, exp, "ana")
    bad_version = Experiment(name="e", prompt="greet", variants=[Variant(name="a", version=4)])
    with pytest.raises(VersionNotFoundError, match="variant 'a': prompt 'greet' has no version 4"):
        await management.set_experiment(store, bad_version, "ana")
    good = Experiment(
        name="e",
        prompt="greet",
        variants=[Variant(name="a", version=1), Variant(name="b", label="production")],
    )
    assert await management.set_experiment(store, good, "ana") == good
    assert await store.experiment("greet") == good
    await management.clear_experiment(store, "greet")
    with pytest.raises(ExperimentNotFoundError, match="no experiment runs on prompt 'greet'"):
        await management.clear_experiment(store, "greet")
