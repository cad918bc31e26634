"""`cairn` loads a service's code only when that service's command runs, and lists every command
with the help its own module declares."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
from typer.core import TyperCommand, TyperGroup
from typer.testing import CliRunner

from cairn_cli.main import ON_DEMAND, app

# A service package, a store or broker client, or the CLI's own heavier modules.
HEAVY = ("asyncpg", "aiokafka", "faststream", "pydantic", "cairn_bus", "cairn_events", "cairn_localstack")


def _loaded_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def _heavy(modules: set[str]) -> list[str]:
    services = {entry.target.split(".")[0] for entry in ON_DEMAND.values()} - {"cairn_cli"}
    cli_own = {entry.target.split(":")[0] for entry in ON_DEMAND.values()}
    return sorted(
        m for m in modules if m.split(".")[0] in {*HEAVY, *services} or m in cli_own or m == "asyncio"
    )


def test_importing_the_command_loads_no_service_and_no_io_library() -> None:
    assert _heavy(_loaded_after("import cairn_cli.main")) == []


def test_the_top_level_help_imports_no_command() -> None:
    code = (
        "from typer.testing import CliRunner\nfrom cairn_cli.main import app\n"
        "assert CliRunner().invoke(app, ['--help']).exit_code == 0"
    )
    assert _heavy(_loaded_after(code)) == []


def test_the_help_lists_every_command_in_typers_order() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert result.exit_code == 0, result.output
    listed = [
        line.split()[1] for line in result.output.splitlines() if line.startswith("│ ") and "  " in line
    ]
    commands = ["status", "report", "submit", "trail", "replay", "demo", "ask"]
    groups = [n for n, e in ON_DEMAND.items() if e.group] + ["loop", "dlq", "audit", "topics"]
    assert [n for n in listed if n in {*commands, *groups}] == commands + groups


@pytest.mark.parametrize("name", sorted(ON_DEMAND))
def test_each_entry_lists_the_help_its_command_declares(name: str) -> None:
    entry = ON_DEMAND[name]
    command = entry.load(name)
    assert command.name == name
    assert isinstance(command, TyperGroup if entry.group else TyperCommand)
    assert inspect.cleandoc(command.help or "").split("\n\n")[0] == entry.help


def test_a_sub_command_runs_through_the_top_level_app() -> None:
    result = CliRunner().invoke(app, ["topics", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "cairn.requests" in result.output


def test_a_mistyped_on_demand_command_is_suggested() -> None:
    result = CliRunner().invoke(app, ["promts"])
    assert result.exit_code != 0
    assert "prompts" in result.output


def test_an_on_demand_group_shows_its_own_help() -> None:
    result = CliRunner().invoke(app, ["stack", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "restart-broker" in result.output
