"""Rendering: variables validated and bound, the sandbox, retrieval and params merged, request turns."""

from __future__ import annotations

from typing import Any

import pytest

from cairn_events import ChatMessage, GenerationParams, RetrievalOptions
from cairn_prompt_store.domain.errors import (
    InvalidPromptError,
    InvalidVariableError,
    MissingVariableError,
    TemplateRenderError,
)
from cairn_prompt_store.domain.render import bind_variables, check_spec, render, spec_problems
from cairn_prompt_store.domain.spec import PromptSpec, VariableSpec

from .conftest import spec


def user(text: str) -> ChatMessage:
    return ChatMessage(role="user", content=text)


def one_message(content: str, variables: list[dict[str, Any]] | None = None) -> PromptSpec:
    return PromptSpec.model_validate(
        {"name": "t", "messages": [{"role": "user", "content": content}], "variables": variables or []}
    )


def test_renders_messages_with_given_values_and_defaults() -> None:
    out = render(spec(), {"who": "Ada"})
    assert [(m.role, m.content) for m in out.messages] == [
        ("system", "Be kind."),
        ("user", "Say hello to Ada."),
    ]
    assert out.variables == {"who": "Ada", "mood": "kind"}
    assert out.retrieval is None
    assert out.params == GenerationParams()


def test_a_missing_required_variable_is_a_clear_error() -> None:
    with pytest.raises(MissingVariableError, match="missing required variable 'who'"):
        render(spec(), {"mood": "brief"})


def test_every_missing_variable_is_named() -> None:
    s = one_message("{{ a }} {{ b }}", [{"name": "a"}, {"name": "b"}])
    with pytest.raises(MissingVariableError, match="missing required variables 'a', 'b'"):
        render(s, {})


@pytest.mark.parametrize(
    ("declaration", "value", "expected"),
    [
        ({"type": "integer"}, "42", 42),
        ({"type": "integer"}, 3.0, 3),
        ({"type": "number"}, "2.5", 2.5),
        ({"type": "boolean"}, "yes", True),
        ({"type": "boolean"}, 0, False),
        ({"type": "string"}, 7, "7"),
        ({"type": "string"}, True, "true"),
        ({"type": "string", "choices": ["a", "b"]}, "b", "b"),
    ],
)
def test_values_are_coerced_to_the_declared_type(
    declaration: dict[str, Any], value: Any, expected: Any
) -> None:
    s = one_message("{{ v }}", [{"name": "v", **declaration}])
    bound = bind_variables(s, {"v": value})
    assert bound == {"v": expected}
    assert type(bound["v"]) is type(expected)


@pytest.mark.parametrize(
    ("declaration", "value", "message"),
    [
        ({"type": "integer"}, "forty", "variable 'v' expected an integer, got 'forty'"),
        ({"type": "integer"}, True, "variable 'v' expected an integer, got a boolean"),
        ({"type": "number"}, "nan", "variable 'v' expected a finite number"),
        ({"type": "boolean"}, "maybe", "variable 'v' expected a boolean, got 'maybe'"),
        ({"choices": ["a", "b"]}, "c", "variable 'v' 'c' is not one of \\['a', 'b'\\]"),
        ({"max_length": 3}, "abcd", "variable 'v' is 4 characters long, at most 3 allowed"),
    ],
)
def test_invalid_values_are_a_clear_error(declaration: dict[str, Any], value: Any, message: str) -> None:
    s = one_message("{{ v }}", [{"name": "v", **declaration}])
    with pytest.raises(InvalidVariableError, match=message):
        render(s, {"v": value})


def test_undeclared_request_variables_are_ignored() -> None:
    out = render(spec(), {"who": "Ada", "unused": "x"})
    assert "unused" not in out.variables
    assert out.messages[1].content == "Say hello to Ada."


def test_declarations_are_checked() -> None:
    with pytest.raises(ValueError, match="is required and has a default"):
        VariableSpec(name="x", required=True, default="d")
    with pytest.raises(ValueError, match="expected an integer"):
        VariableSpec(name="x", type="integer", default="zero")
    with pytest.raises(ValueError, match="declared more than once: x"):
        one_message("{{ x }}", [{"name": "x"}, {"name": "x", "required": False}])
    assert VariableSpec(name="x", default="d").required is False


def test_an_optional_variable_without_value_is_falsy_and_renders_empty() -> None:
    s = one_message(
        "[{% if topic %}on {{ topic }}{% endif %}|{{ topic }}|{{ topic is defined }}]",
        [{"name": "topic", "required": False}],
    )
    assert render(s, {}).messages[0].content == "[||False]"
    assert render(s, {"topic": "io"}).messages[0].content == "[on io|io|True]"


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("{{ ''.__class__ }}", "access to attribute '__class__' of 'str' object is unsafe"),
        ("{{ who.__class__.__mro__[1].__subclasses__() }}", "unsafe"),
        ("{{ who | attr('__class__') }}", "unsafe"),
        ("{{ who.__len__() }}", "unsafe"),
        ("{{ cycler.__init__.__globals__ }}", "unsafe"),
        ("{{ 'x' * 1000000 }}", "repetition would build more than 100000 items"),
        ("{{ 2 ** 100000 }}", "exponent larger than 1000"),
        ("{% for i in range(10**7) %}{% endfor %}", "Range too big"),
        ("{{ who.missing_attribute }}", "has no attribute 'missing_attribute'"),
        ("{{ who | int + 'a' }}", "unsupported operand"),
    ],
)
def test_the_sandbox_refuses_unsafe_or_failing_templates(source: str, error: str) -> None:
    s = one_message(source, [{"name": "who"}])
    with pytest.raises(TemplateRenderError, match=r"template error in message 1 \(user\): ") as caught:
        render(s, {"who": "Ada"})
    assert error in str(caught.value)


def test_a_huge_rendering_is_refused() -> None:
    s = one_message("{% for i in range(3000) %}{{ who }}{% endfor %}", [{"name": "who"}])
    with pytest.raises(TemplateRenderError, match="renders more than 200000 characters"):
        render(s, {"who": "x" * 100})


def test_push_time_checks_find_syntax_errors_and_undeclared_names() -> None:
    s = PromptSpec.model_validate(
        {
            "name": "t",
            "messages": [
                {"role": "system", "content": "{% if x %}open"},
                {"role": "user", "content": "{{ who }} {{ ghost }} {{ range(2) | list }}"},
            ],
            "variables": [{"name": "who"}],
            "retrieval": {"query": "{{ phantom }}"},
        }
    )
    assert spec_problems(s) == [
        "message 1 (system): syntax error on line 1: Unexpected end of template. Jinja was looking for "
        "the following tags: 'elif' or 'else' or 'endif'. The innermost block that needs to be closed is 'if'.",
        "message 2 (user): uses undeclared variable(s): ghost",
        "retrieval query: uses undeclared variable(s): phantom",
    ]
    with pytest.raises(InvalidPromptError, match="prompt 't': message 1"):
        check_spec(s)
    assert check_spec(spec()) == spec()


def test_request_turns_are_appended_after_the_rendered_ones() -> None:
    history = [user("hi"), ChatMessage(role="assistant", content="hello")]
    out = render(spec(), {"who": "Ada"}, history)
    assert [m.content for m in out.messages] == ["Be kind.", "Say hello to Ada.", "hi", "hello"]


def test_question_comes_from_the_last_user_turn_which_is_not_repeated(qa_spec: PromptSpec) -> None:
    turns = [user("hi"), ChatMessage(role="assistant", content="hello"), user("What does yield do?")]
    out = render(qa_spec, {"topic": "generators"}, turns)
    assert [m.role for m in out.messages] == ["system", "user", "assistant", "user"]
    assert [m.content for m in out.messages[1:]] == ["hi", "hello", "What does yield do?"]
    assert "The question is about generators." in out.messages[0].content
    assert out.variables["question"] == "What does yield do?"


def test_an_explicit_question_variable_keeps_all_turns(qa_spec: PromptSpec) -> None:
    out = render(qa_spec, {"question": "Q?"}, [user("follow-up")])
    assert [m.content for m in out.messages[1:]] == ["Q?", "follow-up"]


def test_question_from_the_last_turn_when_the_template_has_no_user_turn() -> None:
    s = PromptSpec.model_validate(
        {
            "name": "t",
            "messages": [{"role": "system", "content": "Answer: {{ question }}"}],
            "variables": [{"name": "question"}],
        }
    )
    out = render(s, {}, [user("Why?")])
    assert [(m.role, m.content) for m in out.messages] == [("system", "Answer: Why?"), ("user", "Why?")]


def test_without_a_user_turn_the_question_is_missing(qa_spec: PromptSpec) -> None:
    with pytest.raises(MissingVariableError, match="'question'"):
        render(qa_spec, {}, [ChatMessage(role="assistant", content="Hello")])


def test_blank_turns_are_dropped_and_nothing_at_all_is_an_error() -> None:
    s = PromptSpec.model_validate(
        {
            "name": "t",
            "messages": [
                {"role": "system", "content": "{% if extra %}{{ extra }}{% endif %}"},
                {"role": "user", "content": "hi"},
            ],
            "variables": [{"name": "extra", "required": False}],
        }
    )
    assert [m.role for m in render(s, {}).messages] == ["user"]
    empty = one_message("  {{ '' }} ")
    with pytest.raises(TemplateRenderError, match="rendered no messages"):
        render(empty, {})


def test_retrieval_query_is_rendered_from_its_template(qa_spec: PromptSpec) -> None:
    out = render(qa_spec, {"topic": "generators"}, [user("What does yield do?")])
    assert out.retrieval == RetrievalOptions(query="generators: What does yield do?", top_k=4)
    out = render(qa_spec, {}, [user("What does yield do?")])
    assert out.retrieval == RetrievalOptions(query="What does yield do?", top_k=4)


def test_retrieval_query_defaults_to_the_question_then_the_last_user_turn() -> None:
    s = PromptSpec.model_validate(
        {
            "name": "t",
            "messages": [{"role": "user", "content": "{{ question }}"}],
            "variables": [{"name": "question"}],
            "retrieval": {"top_k": 2, "min_score": 0.3, "collection": "docs"},
        }
    )
    out = render(s, {"question": "What is a decorator?"})
    assert out.retrieval == RetrievalOptions(
        query="What is a decorator?", top_k=2, min_score=0.3, collection="docs"
    )
    plain = PromptSpec.model_validate(
        {"name": "t", "messages": [{"role": "system", "content": "Be brief."}], "retrieval": {}}
    )
    out = render(plain, {}, [user("first"), user("  second  ")])
    assert out.retrieval is not None
    assert out.retrieval.query == "second"


def test_no_grounding_unless_the_template_or_the_request_asks() -> None:
    assert render(spec(), {"who": "A"}).retrieval is None
    disabled = spec(retrieval={"enabled": False, "top_k": 9})
    assert render(disabled, {"who": "A"}).retrieval is None
    asked = render(spec(), {"who": "A"}, retrieval=RetrievalOptions(top_k=7, collection="kb"))
    assert asked.retrieval == RetrievalOptions(query="Say hello to A.", top_k=7, collection="kb")


def test_request_retrieval_options_override_the_templates_field_by_field(qa_spec: PromptSpec) -> None:
    requested = RetrievalOptions.model_validate({"query": "yield keyword", "top_k": 4, "min_score": 0.5})
    out = render(qa_spec, {"question": "Q"}, retrieval=requested)
    assert out.retrieval == RetrievalOptions(query="yield keyword", top_k=4, min_score=0.5)


def test_request_params_override_the_template_defaults_they_change() -> None:
    s = spec(params={"max_tokens": 64, "temperature": 0.7, "stop": ["\n\n"]}, model="smol")
    # as a Cairn producer writes it: every field present, most at the schema default
    requested = GenerationParams.model_validate(
        {"max_tokens": 256, "temperature": 0.0, "top_p": 0.9, "stop": [], "seed": 42}
    )
    out = render(s, {"who": "A"}, params=requested)
    assert out.params == GenerationParams(max_tokens=64, temperature=0.7, top_p=0.9, stop=["\n\n"], seed=42)
    assert out.model == "smol"
    assert render(s, {"who": "A"}, model="big").model == "big"
    assert render(s, {"who": "A"}, params=GenerationParams(max_tokens=10)).params.max_tokens == 10


def test_only_the_prompt_opts_in_to_reusing_sampled_answers() -> None:
    opted = spec(params={"temperature": 0.7, "cache_sampled": True})
    assert render(opted, {"who": "A"}).params.cache_sampled is True
    plain = spec(params={"temperature": 0.7})
    asked = GenerationParams(temperature=0.9, cache_sampled=True)  # a request cannot opt in by itself
    out = render(plain, {"who": "A"}, params=asked)
    assert (out.params.temperature, out.params.cache_sampled) == (0.9, False)


def test_only_the_prompt_opts_in_to_the_semantic_cache_and_sets_its_threshold() -> None:
    opted = spec(params={"cache_semantic": True, "cache_similarity": 0.97})
    asked_lower = GenerationParams(cache_similarity=0.6)  # a request cannot loosen the prompt's threshold
    out = render(opted, {"who": "A"}, params=asked_lower)
    assert (out.params.cache_semantic, out.params.cache_similarity) == (True, 0.97)
    plain = spec(params={})
    asked = GenerationParams(cache_semantic=True, cache_similarity=0.5)
    out = render(plain, {"who": "A"}, params=asked)
    assert (out.params.cache_semantic, out.params.cache_similarity) == (False, None)
