"""The template engine: Jinja2's sandbox, strict about undefined names, with size limits.

The sandbox refuses access to private and dunder attributes (`{{ ''.__class__ }}`) and unsafe
callables; on top of it, repetition and powers are bounded so a template cannot build huge values.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

MAX_REPEAT = 100_000
"""Longest string or list a template may build with `*`."""

MAX_EXPONENT = 1_000
"""Largest exponent `**` may take."""


class PromptEnvironment(SandboxedEnvironment):
    """Jinja2 `SandboxedEnvironment` + `StrictUndefined`, no autoescaping (the output is chat text)."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self) -> None:
        super().__init__(
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "*":
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(times, int)
                    and len(seq) * times > MAX_REPEAT
                ):
                    raise SecurityError(f"repetition would build more than {MAX_REPEAT} items")
            return operator.mul(left, right)
        if operator_name == "**":
            if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponent larger than {MAX_EXPONENT}")
            return operator.pow(left, right)
        return super().call_binop(context, operator_name, left, right)


ENVIRONMENT = PromptEnvironment()
"""The one shared environment (compiled templates are cached by it)."""


def template_problems(source: str, declared: Iterable[str]) -> list[str]:
    """What is wrong with a template before it is ever rendered: syntax, names nobody declared."""
    try:
        ast = ENVIRONMENT.parse(source)
    except TemplateSyntaxError as exc:
        return [f"syntax error on line {exc.lineno}: {exc.message}"]
    undeclared = meta.find_undeclared_variables(ast) - set(declared) - set(ENVIRONMENT.globals)
    if undeclared:
        return [f"uses undeclared variable(s): {', '.join(sorted(undeclared))}"]
    return []
