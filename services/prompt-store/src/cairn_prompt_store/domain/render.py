"""Rendering one prompt version for one request: variables bound, templates rendered, options merged."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import Template, Undefined
from pydantic import BaseModel

from cairn_events import ChatMessage, GenerationParams, JsonScalar, RetrievalOptions
from cairn_prompt_store.domain.errors import (
    InvalidPromptError,
    InvalidVariableError,
    MissingVariableError,
    TemplateRenderError,
)
from cairn_prompt_store.domain.sandbox import ENVIRONMENT, template_problems
from cairn_prompt_store.domain.spec import PromptSpec

QUESTION = "question"
"""The variable filled from the request's last user message when the request does not give it."""

MAX_RENDERED_CHARS = 200_000
"""Longest text one template may render."""


@dataclass(frozen=True)
class RenderedPrompt:
    """What a request gets from its prompt version."""

    messages: list[ChatMessage]
    retrieval: RetrievalOptions | None
    params: GenerationParams
    model: str | None
    variables: dict[str, JsonScalar]


def spec_problems(spec: PromptSpec) -> list[str]:
    """Everything wrong with the spec's templates; empty when it can be stored."""
    declared = [v.name for v in spec.variables]
    problems = [
        f"message {i} ({m.role}): {p}"
        for i, m in enumerate(spec.messages, 1)
        for p in template_problems(m.content, declared)
    ]
    if spec.retrieval is not None and spec.retrieval.query is not None:
        problems += [f"retrieval query: {p}" for p in template_problems(spec.retrieval.query, declared)]
    return problems


def check_spec(spec: PromptSpec) -> PromptSpec:
    """`spec` when its templates are sound; raises InvalidPromptError listing every problem."""
    problems = spec_problems(spec)
    if problems:
        raise InvalidPromptError(f"prompt {spec.name!r}: " + "; ".join(problems))
    return spec


def bind_variables(spec: PromptSpec, given: Mapping[str, JsonScalar]) -> dict[str, JsonScalar]:
    """Declared variables with their values (given, else default); undeclared values are ignored.

    Raises MissingVariableError naming every required variable without a value, or InvalidVariableError
    naming every value that does not fit its declaration.
    """
    missing = [v.name for v in spec.variables if v.required and v.name not in given]
    if missing:
        names = ", ".join(repr(n) for n in missing)
        raise MissingVariableError(f"missing required variable{'s' if len(missing) > 1 else ''} {names}")
    bound: dict[str, JsonScalar] = {}
    invalid: list[str] = []
    for var in spec.variables:
        value = given.get(var.name, var.default)
        if value is None:
            continue
        try:
            bound[var.name] = var.coerce(value)
        except ValueError as exc:
            invalid.append(f"variable {var.name!r} {exc}")
    if invalid:
        raise InvalidVariableError("; ".join(invalid))
    return bound


@lru_cache(maxsize=1024)
def compiled(source: str) -> Template:
    """The compiled template of `source` (versions are immutable, so compiled once per process)."""
    return ENVIRONMENT.from_string(source)


def render_text(source: str, variables: Mapping[str, Any], where: str) -> str:
    """Render one template in the sandbox; raises TemplateRenderError saying where and why."""
    try:
        text = compiled(source).render(**variables)
    except Exception as exc:  # any failure of a user's template is that template's error
        raise TemplateRenderError(f"template error in {where}: {exc}") from None
    if len(text) > MAX_RENDERED_CHARS:
        raise TemplateRenderError(
            f"template error in {where}: renders more than {MAX_RENDERED_CHARS} characters"
        )
    return text


def explicit_fields(model: BaseModel) -> dict[str, Any]:
    """The fields a request chose: set, and different from the schema's default.

    Cairn's own producers write every field, so a value equal to the default cannot be told from
    one left out; either way the prompt's default applies.
    """
    out: dict[str, Any] = {}
    for name in model.model_fields_set:
        value = getattr(model, name)
        if value is not None and value != type(model).model_fields[name].get_default(
            call_default_factory=True
        ):
            out[name] = value
    return out


PROMPT_ONLY_PARAMS = frozenset({"cache_sampled", "cache_semantic", "cache_similarity"})
"""Parameters only a prompt sets: a request's value is ignored (the prompt opts in to reusing sampled
answers, or answers to questions close in meaning, and sets how close)."""


def merge_params(defaults: GenerationParams, requested: GenerationParams) -> GenerationParams:
    """The template's defaults, overridden by the fields the request chose (see `explicit_fields`),
    except the prompt-only ones."""
    chosen = {k: v for k, v in explicit_fields(requested).items() if k not in PROMPT_ONLY_PARAMS}
    return GenerationParams.model_validate({**defaults.model_dump(), **chosen})


def template_context(spec: PromptSpec, bound: Mapping[str, JsonScalar]) -> dict[str, Any]:
    """What templates see: bound values, and for declared optional variables without a value a lenient
    undefined (falsy, renders empty, `is defined` is false). Undeclared names stay strict errors."""
    unset: dict[str, Any] = {v.name: Undefined(name=v.name) for v in spec.variables}
    return unset | dict(bound)


def _retrieval(
    spec: PromptSpec,
    variables: Mapping[str, Any],
    conversation: Sequence[ChatMessage],
    requested: RetrievalOptions | None,
) -> RetrievalOptions | None:
    template = spec.retrieval if spec.retrieval is not None and spec.retrieval.enabled else None
    if template is None and requested is None:
        return None
    query: str | None = None
    if template is not None and template.query is not None:
        query = render_text(template.query, variables, "retrieval query").strip() or None
    elif isinstance(variables.get(QUESTION), str | int | float):
        query = str(variables[QUESTION]).strip() or None
    if query is None:
        users = [m.content for m in conversation if m.role == "user" and m.content.strip()]
        query = users[-1].strip() if users else None
    options: dict[str, Any] = {"query": query}
    if template is not None:
        options |= {"top_k": template.top_k, "min_score": template.min_score}
        options |= {"collection": template.collection}
    if requested is not None:
        options |= explicit_fields(requested)
    return RetrievalOptions.model_validate(options)


def render(
    spec: PromptSpec,
    variables: Mapping[str, JsonScalar],
    extra_messages: Sequence[ChatMessage] = (),
    *,
    params: GenerationParams | None = None,
    retrieval: RetrievalOptions | None = None,
    model: str | None = None,
) -> RenderedPrompt:
    """Render `spec` for a request's variables, extra turns, params, retrieval options and model.

    The request's turns are appended after the rendered ones. Except: when the template declares
    `question`, the request gives no such variable and its turns end with a user message, that
    message becomes `question`; if the template then renders a user turn of its own, the message is
    not repeated and the request's earlier turns (chat history) go before the template's last user
    turn. Turns that render blank are dropped.
    """
    given = dict(variables)
    extra = list(extra_messages)
    asked = (
        spec.variable(QUESTION) is not None
        and QUESTION not in given
        and bool(extra)
        and extra[-1].role == "user"
    )
    if asked:
        given[QUESTION] = extra[-1].content
    bound = bind_variables(spec, given)
    context = template_context(spec, bound)
    messages: list[ChatMessage] = []
    for i, template in enumerate(spec.messages, 1):
        text = render_text(template.content, context, f"message {i} ({template.role})")
        if text.strip():
            messages.append(ChatMessage(role=template.role, content=text))
    own_user_turns = [i for i, m in enumerate(messages) if m.role == "user"]
    if asked and own_user_turns:
        last = own_user_turns[-1]
        messages = messages[:last] + extra[:-1] + messages[last:]
    else:
        messages += extra
    if not messages:
        raise TemplateRenderError("the template rendered no messages and the request added none")
    return RenderedPrompt(
        messages=messages,
        retrieval=_retrieval(spec, context, messages, retrieval),
        params=merge_params(spec.params, params or GenerationParams()),
        model=model or spec.model,
        variables=bound,
    )
