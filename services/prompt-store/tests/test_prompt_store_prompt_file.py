"""The YAML prompt format and the seed prompt in infra/prompts."""

from __future__ import annotations

import pytest

from cairn_events import ChatMessage, GenerationParams, RetrievalOptions
from cairn_prompt_store.domain.errors import InvalidPromptError
from cairn_prompt_store.domain.prompt_file import dump_prompt, load_prompt
from cairn_prompt_store.domain.render import check_spec, render
from cairn_prompt_store.domain.spec import PromptSpec


def test_the_seed_qa_prompt_is_a_grounded_cited_python_docs_prompt(qa_spec: PromptSpec) -> None:
    assert check_spec(qa_spec) is qa_spec
    assert qa_spec.name == "qa"
    assert [(v.name, v.required) for v in qa_spec.variables] == [("question", True), ("topic", False)]
    system = qa_spec.messages[0]
    assert system.role == "system"
    assert "only the numbered context passages" in system.content
    assert "[n]" in system.content
    assert qa_spec.retrieval is not None
    assert qa_spec.retrieval.enabled
    out = render(qa_spec, {"topic": "generators"}, [ChatMessage(role="user", content="What does yield do?")])
    assert [m.role for m in out.messages] == ["system", "user"]
    assert out.messages[1].content == "What does yield do?"
    assert out.retrieval == RetrievalOptions(query="generators: What does yield do?", top_k=4)
    assert out.params == GenerationParams(max_tokens=256, temperature=0.0)


def test_the_canonical_source_loads_back_to_the_same_content(qa_spec: PromptSpec) -> None:
    source = dump_prompt(qa_spec)
    assert "  content: |\n    You are a careful assistant" in source
    again = load_prompt(source)
    assert again == qa_spec
    assert again.content_hash() == qa_spec.content_hash()


def test_defaults_written_or_left_out_are_the_same_content() -> None:
    short = load_prompt("name: p\nmessages: [{role: user, content: hi}]\n")
    long = load_prompt(
        "name: p\ndescription: ''\nmessages: [{role: user, content: hi}]\nvariables: []\n"
        "params: {max_tokens: 256, temperature: 0.0}\nmetadata: {}\n"
    )
    assert short.content_hash() == long.content_hash()
    assert short.content_hash().startswith("sha256:")
    assert (
        load_prompt("name: p\nmessages: [{role: user, content: hi!}]\n").content_hash()
        != short.content_hash()
    )


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("name: [unclosed", "not valid YAML"),
        ("- a list", "expected a mapping"),
        ("name: p\nmessages: []\n", "messages: List should have at least 1 item"),
        ("name: p\nmessages: [{role: robot, content: x}]\n", "messages.0.role: Input should be"),
        ("name: p\nmessages: [{role: user, content: x}]\ntemperature: 1\n", "temperature: Extra inputs"),
        ("name: '-bad'\nmessages: [{role: user, content: x}]\n", "name: String should match pattern"),
        (
            "name: p\nmessages: [{role: user, content: x}]\nparams: {temperature: 9}\n",
            "params.temperature: Input should be less than or equal to 2",
        ),
    ],
)
def test_bad_files_say_what_is_wrong(text: str, error: str) -> None:
    with pytest.raises(InvalidPromptError, match=r"^f\.yaml: ") as caught:
        load_prompt(text, "f.yaml")
    assert error in str(caught.value)
