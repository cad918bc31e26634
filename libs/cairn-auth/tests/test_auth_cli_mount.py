"""`cairn keys` mounts under another typer app (as the `cairn` command does) and documents itself."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from cairn_auth.cli import app as keys_app


def test_keys_mount_under_cairn() -> None:
    cairn = typer.Typer()
    cairn.add_typer(keys_app, name="keys")
    runner = CliRunner(env={"COLUMNS": "200"})
    top = runner.invoke(cairn, ["keys", "--help"])
    assert top.exit_code == 0, top.output
    for command in ("create", "list", "revoke"):
        assert command in top.output
    create = runner.invoke(cairn, ["keys", "create", "--help"])
    assert create.exit_code == 0, create.output
    assert "ONCE" in create.output
    assert "viewer" in create.output
