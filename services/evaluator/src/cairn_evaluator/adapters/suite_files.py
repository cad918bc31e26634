"""Suites from YAML files: every `*.yaml` of a folder (`infra/eval/suites` by default)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from cairn_evaluator.domain.errors import SuiteError
from cairn_evaluator.domain.suites import Suite


def parse_suite(text: str, origin: str = "<suite>") -> Suite:
    """A suite from YAML text; SuiteError names the file and the problem."""
    try:
        data = yaml.safe_load(text)
        return Suite.model_validate(data)
    except yaml.YAMLError as exc:
        raise SuiteError(f"{origin}: not YAML: {exc}") from None
    except ValidationError as exc:
        raise SuiteError(f"{origin}: {exc}") from None


class SuiteFiles:
    """`SuiteSource` over a folder of YAML files; a relative folder is taken from `base`."""

    def __init__(self, folder: str | Path, base: Path | None = None) -> None:
        path = Path(folder)
        self.folder = path if path.is_absolute() or base is None else base / path

    def load(self) -> list[Suite]:
        """Every suite in the folder, by name (none when the folder does not exist)."""
        if not self.folder.is_dir():
            return []
        suites = [
            parse_suite(p.read_text(encoding="utf-8"), str(p)) for p in sorted(self.folder.glob("*.yaml"))
        ]
        names = [s.name for s in suites]
        if len(names) != len(set(names)):
            raise SuiteError(f"{self.folder}: two suites share a name")
        return sorted(suites, key=lambda s: s.name)


class StaticSuites:
    """`SuiteSource` of suites given in code (tests)."""

    def __init__(self, suites: list[Suite]) -> None:
        self.suites = suites

    def load(self) -> list[Suite]:
        """The suites given."""
        return list(self.suites)
