"""A prompt template as it is pushed: chat messages, declared variables, retrieval, defaults, metadata."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from cairn_events import GenerationParams, JsonScalar
from cairn_events.base import PROMPT_NAME_PATTERN

VariableType = Literal["string", "integer", "number", "boolean"]

_INTEGER = re.compile(r"^[+-]?\d+$")
_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}


def _sorted(value: JsonValue) -> JsonValue:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _config() -> ConfigDict:
    return ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class VariableSpec(BaseModel):
    """A variable the template declares: the request must (or may) give it a value of this type."""

    model_config = _config()

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Name used in the template.")
    description: str = Field("", description="What the value means, for people writing requests.")
    required: bool = Field(
        True, description="Whether a request must give it; a variable with a default is optional."
    )
    default: JsonScalar | None = Field(None, description="Value used when the request gives none.")
    type: VariableType = Field(
        "string", description='Expected type; values are coerced where lossless (`"3"` for an integer).'
    )
    choices: list[JsonScalar] | None = Field(None, description="Allowed values, if restricted.")
    max_length: int | None = Field(None, ge=1, description="Longest allowed string value, if limited.")

    @model_validator(mode="before")
    @classmethod
    def _default_makes_optional(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("default") is not None and "required" not in data:
            return {**data, "required": False}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> VariableSpec:
        if self.required and self.default is not None:
            raise ValueError(f"variable {self.name!r} is required and has a default: choose one")
        if self.default is not None:
            self.coerce(self.default)
        if self.choices is not None:
            for choice in self.choices:
                self.coerce(choice, check_choices=False)
        return self

    def coerce(self, value: JsonScalar, *, check_choices: bool = True) -> JsonScalar:
        """The value as this variable's type; raises ValueError saying why it does not fit."""
        out: JsonScalar
        if self.type == "string":
            out = ("true" if value else "false") if isinstance(value, bool) else str(value)
            if self.max_length is not None and len(out) > self.max_length:
                raise ValueError(f"is {len(out)} characters long, at most {self.max_length} allowed")
        elif self.type == "integer":
            if isinstance(value, bool):
                raise ValueError("expected an integer, got a boolean")
            if isinstance(value, int):
                out = value
            elif isinstance(value, float) and value.is_integer():
                out = int(value)
            elif isinstance(value, str) and _INTEGER.match(value.strip()):
                out = int(value.strip())
            else:
                raise ValueError(f"expected an integer, got {value!r}")
        elif self.type == "number":
            if isinstance(value, bool):
                raise ValueError("expected a number, got a boolean")
            if isinstance(value, int | float):
                out = value
            else:
                try:
                    out = float(value)
                except ValueError:
                    raise ValueError(f"expected a number, got {value!r}") from None
                if out != out or out in (float("inf"), float("-inf")):
                    raise ValueError(f"expected a finite number, got {value!r}")
        else:
            if isinstance(value, bool):
                out = value
            elif isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                out = value.strip().lower() in _TRUE
            elif isinstance(value, int) and value in (0, 1):
                out = bool(value)
            else:
                raise ValueError(f"expected a boolean, got {value!r}")
        if check_choices and self.choices is not None:
            allowed = [self.coerce(c, check_choices=False) for c in self.choices]
            if out not in allowed:
                raise ValueError(f"{out!r} is not one of {allowed}")
        return out


class MessageTemplate(BaseModel):
    """One chat turn of the template; `content` is Jinja source rendered in a sandbox."""

    model_config = _config()

    role: Literal["system", "user", "assistant"] = Field(description="Who speaks.")
    content: str = Field(description="Jinja template of the turn's text.")


class RetrievalSpec(BaseModel):
    """Whether requests of this prompt are grounded, and how the retriever is asked."""

    model_config = _config()

    enabled: bool = Field(True, description="Ground requests in retrieved documents.")
    query: str | None = Field(
        None,
        description="Jinja template of the search query; none for the `question` variable, else the "
        "last user message.",
    )
    top_k: int = Field(4, ge=1, le=50, description="How many chunks to retrieve.")
    min_score: float | None = Field(None, description="Drop chunks scoring below this.")
    collection: str | None = Field(None, description="Document collection; none for the tenant default.")


class PromptSpec(BaseModel):
    """Everything one prompt version consists of. Versions are immutable; equal specs are one version."""

    model_config = _config()

    name: str = Field(pattern=PROMPT_NAME_PATTERN, description="The prompt's name in the store.")
    description: str = Field("", description="What the prompt is for.")
    messages: list[MessageTemplate] = Field(min_length=1, description="The chat turns, in order.")
    variables: list[VariableSpec] = Field([], description="Variables the templates may use.")
    retrieval: RetrievalSpec | None = Field(None, description="Grounding; none for no retrieval.")
    params: GenerationParams = Field(
        GenerationParams(), description="Default sampling parameters; a request's own override them."
    )
    model: str | None = Field(None, description="Default model; none for the tenant's production model.")
    metadata: dict[str, JsonValue] = Field({}, description="Free-form metadata (owner, tags, ...).")

    @field_validator("metadata")
    @classmethod
    def _sorted_metadata(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        """Keys in sorted order at every level, so a version reads back the same from any store."""
        result = _sorted(value)
        assert isinstance(result, dict)
        return result

    @model_validator(mode="after")
    def _unique_variables(self) -> PromptSpec:
        names = [v.name for v in self.variables]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"variables declared more than once: {', '.join(duplicated)}")
        return self

    def variable(self, name: str) -> VariableSpec | None:
        """The declaration of `name`, if any."""
        return next((v for v in self.variables if v.name == name), None)

    def canonical(self) -> dict[str, Any]:
        """The spec as plain JSON data with every default filled in (what is stored and hashed)."""
        return self.model_dump(mode="json")

    def content_hash(self) -> str:
        """`sha256:<hex>` of the canonical JSON: two pushes of the same content share one version."""
        data = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return "sha256:" + hashlib.sha256(data.encode()).hexdigest()
