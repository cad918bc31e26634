"""Commands imported only when they run, so `cairn --help` loads no service and no I/O library.

A command group whose class is `on_demand_group(entries)` lists each entry by its name and help
without importing it; the entry's module is imported the first time the command is resolved (to
run it or to show its own help). Help listings and shell completion never import an entry.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

__all__ = ["OnDemand", "on_demand_group"]

_LISTING = "cairn_cli.on_demand.listing"


@dataclass(frozen=True)
class OnDemand:
    """A command living in another module. `target` is "module:attribute": a Typer app (`group`) or
    a command function; `help` is the first paragraph of the target's own help, as listed."""

    target: str
    help: str
    group: bool = True

    def load(self, name: str) -> TyperCommand | TyperGroup:
        """Import the target and build its command, named `name`."""
        module, _, attribute = self.target.partition(":")
        found = getattr(importlib.import_module(module), attribute)
        if self.group:
            command: TyperCommand | TyperGroup = typer.main.get_group(found)
        else:
            single = typer.Typer(add_completion=False)
            single.command(name)(found)
            built = typer.main.get_command(single)
            assert isinstance(built, TyperCommand)
            command = built
        command.name = name
        return command


class _Listed(TyperCommand):
    """An entry not imported yet, as a help listing shows it: its name and help."""

    def __init__(self, name: str, entry: OnDemand) -> None:
        super().__init__(name=name, help=entry.help)
        self.entry = entry


@contextmanager
def _listing(ctx: Any) -> Iterator[None]:
    ctx.meta[_LISTING] = True
    try:
        yield
    finally:
        ctx.meta.pop(_LISTING, None)


class _OnDemandGroup(TyperGroup):
    entries: Mapping[str, OnDemand] = {}

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for name, entry in self.entries.items():
            self.commands.setdefault(name, _Listed(name, entry))

    def _is_group(self, name: str) -> bool:
        command = self.commands[name]
        return command.entry.group if isinstance(command, _Listed) else isinstance(command, TyperGroup)

    def list_commands(self, ctx: Any) -> list[str]:
        """Commands before groups, as Typer lists them; on-demand entries first within each."""
        return sorted(self.commands, key=lambda n: (self._is_group(n), n not in self.entries))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = self.commands.get(cmd_name)
        if isinstance(command, _Listed) and not ctx.meta.get(_LISTING):
            command = self.commands[cmd_name] = command.entry.load(cmd_name)
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        with _listing(ctx):
            super().format_help(ctx, formatter)

    def shell_complete(self, ctx: Any, incomplete: str) -> Any:
        with _listing(ctx):
            return super().shell_complete(ctx, incomplete)


def on_demand_group(entries: Mapping[str, OnDemand]) -> type[TyperGroup]:
    """A Typer group class (`typer.Typer(cls=...)`) that also holds `entries`, by name, and imports
    each only when it is run or its own help is shown."""
    return type("OnDemandGroup", (_OnDemandGroup,), {"entries": dict(entries)})
