"""`cairn docs` (the retriever's typer app) against a fresh database: ingest, no-op, list, search, delete."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from cairn_retriever.cli import app

pytestmark = pytest.mark.integration


async def docs(dsn: str, *args: str, **extra: str) -> Result:
    """Run the command in a thread (it runs its own event loop), with the test's database."""
    runner = CliRunner()
    env = {"CAIRN_POSTGRES_DSN": dsn, "COLUMNS": "250", "CAIRN_CHUNK_SIZE": "64", "CAIRN_CHUNK_OVERLAP": "8"}
    env.update(extra)
    return await asyncio.to_thread(runner.invoke, app, list(args), env=env, catch_exceptions=False)


def summary(output: str) -> dict[str, str]:
    """The ingest summary table as {column: value}."""
    lines = output.splitlines()
    header = next(line for line in lines if "documents" in line and "unchanged" in line)
    row = next(line for line in lines[lines.index(header) :] if line.startswith("│"))
    names = [c.strip() for c in header.strip("┃ ").split("┃")]
    values = [c.strip() for c in row.strip("│ ").split("│")]
    return dict(zip(names, values, strict=True))


async def test_ingest_list_search_delete(tmp_path: Path, fresh_database: str, minilm: Any) -> None:
    (tmp_path / "generators.md").write_text(
        "# Generators\n\nA generator function uses yield to produce a sequence of values lazily."
    )
    (tmp_path / "cooking.txt").write_text("Boil the pasta for ten minutes, then drain it and add the sauce.")

    first = await docs(fresh_database, "ingest", str(tmp_path), "--collection", "kb")
    assert first.exit_code == 0, first.output
    added = summary(first.output)
    assert (added["documents"], added["added"], added["unchanged"]) == ("2", "2", "0")
    assert int(added["chunks"]) >= 2

    again = await docs(fresh_database, "ingest", str(tmp_path), "--collection", "kb")
    assert again.exit_code == 0, again.output
    unchanged = summary(again.output)
    assert (unchanged["added"], unchanged["unchanged"], unchanged["chunks"]) == ("0", "2", "0")

    listed = await docs(fresh_database, "list")
    assert "generators.md" in listed.output
    assert "cooking.txt" in listed.output

    found = await docs(
        fresh_database, "search", "How do I make a lazy sequence?", "--k", "1", "--mode", "vector"
    )
    assert found.exit_code == 0, found.output
    assert "generators.md" in found.output
    assert "cooking.txt" not in found.output

    gone = await docs(fresh_database, "delete", str(tmp_path / "cooking.txt"))
    assert gone.exit_code == 0, gone.output
    assert "cooking.txt" not in (await docs(fresh_database, "list")).output
    missing = await docs(fresh_database, "delete", "file:///nowhere.txt")
    assert missing.exit_code == 1


async def test_a_missing_path_is_reported(fresh_database: str, minilm: Any, tmp_path: Path) -> None:
    result = await docs(fresh_database, "ingest", str(tmp_path / "nope"))
    assert result.exit_code == 1
    assert "no such file" in result.output


async def test_rescan_reingests_what_changed_in_the_watched_sources(
    tmp_path: Path, fresh_database: str, minilm: Any
) -> None:
    (tmp_path / "a.md").write_text("# Alpha\n\nThe first page.")
    (tmp_path / "b.md").write_text("# Beta\n\nThe second page.")
    watched = {"CAIRN_WATCHED_SOURCES": f'["kb={tmp_path}"]'}
    first = await docs(fresh_database, "rescan", **watched)
    assert first.exit_code == 0, first.output
    assert "│ kb " in first.output
    (tmp_path / "a.md").write_text("# Alpha\n\nThe first page, rewritten.")
    (tmp_path / "b.md").unlink()
    second = await docs(fresh_database, "rescan", **watched)
    assert second.exit_code == 0, second.output
    row = next(line for line in second.output.splitlines() if line.startswith("│ kb"))
    assert [c.strip() for c in row.strip("│ ").split("│")][2:] == ["1", "0", "1", "1", "0"]
    assert (await docs(fresh_database, "rescan")).exit_code == 1  # nothing watched
