"""The YAML prompt file format (`infra/prompts/*.yaml`) and the canonical source shown by diffs."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from cairn_prompt_store.domain.errors import InvalidPromptError
from cairn_prompt_store.domain.spec import PromptSpec


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'prompt'}: {err['msg']}" for err in exc.errors()
    )


def spec_from_data(data: Any, where: str = "prompt") -> PromptSpec:
    """A spec from parsed data; raises InvalidPromptError naming each problem."""
    if not isinstance(data, dict):
        raise InvalidPromptError(f"{where}: expected a mapping with name, messages, variables, ...")
    try:
        return PromptSpec.model_validate(data)
    except ValidationError as exc:
        raise InvalidPromptError(f"{where}: {_problems(exc)}") from None


def load_prompt(text: str, where: str = "prompt file") -> PromptSpec:
    """Parse a YAML prompt file; raises InvalidPromptError on bad YAML or a bad spec."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidPromptError(f"{where}: not valid YAML: {exc}") from None
    return spec_from_data(data, where)


class _SourceDumper(yaml.SafeDumper):
    """Multi-line strings as `|` blocks, so a diff shows template lines as they are written."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_SourceDumper.add_representer(str, _str)


def dump_prompt(spec: PromptSpec) -> str:
    """The spec as YAML with every default written out: the canonical source of a version."""
    return yaml.dump(spec.canonical(), Dumper=_SourceDumper, sort_keys=False, allow_unicode=True, width=100)
