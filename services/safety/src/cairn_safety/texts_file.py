"""Reading a file of texts to screen (`cairn safety check --file`): plain text, one text a line, or JSON
lines (`{"text": ..., "id": ...}`). Blank lines are skipped; a line that cannot be read is an error
naming the file and the line."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["FORMATS", "FileText", "TextsFileError", "parse_texts", "read_texts"]

Format = Literal["auto", "text", "jsonl"]
FORMATS: tuple[Format, ...] = ("auto", "text", "jsonl")
"""`auto` reads JSON lines when the first line that is not blank starts with `{`, else plain text."""


@dataclass(frozen=True)
class FileText:
    """One text of the file, where it was and what it is called."""

    line: int
    """Its line number (from 1)."""
    id: str
    """The JSON line's `id`, else the line number."""
    text: str


class TextsFileError(ValueError):
    """A file of texts that cannot be read, or a line of it that is not what its format needs."""

    def __init__(self, where: str, problem: str, line: int | None = None) -> None:
        super().__init__(f"{where}:{line}: {problem}" if line is not None else f"{where}: {problem}")
        self.line = line


def _json_text(raw: str, line: int, where: str, hint: str) -> FileText:
    try:
        found = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise TextsFileError(where, f"not JSON: {exc.msg} (column {exc.colno}){hint}", line) from None
    if not isinstance(found, dict) or not isinstance(found.get("text"), str):
        raise TextsFileError(where, 'expected a JSON object with a "text" string', line)
    key = found.get("id", line)
    if isinstance(key, bool) or not isinstance(key, str | int):
        raise TextsFileError(where, '"id" must be a string or a whole number', line)
    return FileText(line, str(key), found["text"])


def parse_texts(
    lines: Iterable[bytes], where: str, fmt: Format = "auto"
) -> tuple[list[FileText], Literal["text", "jsonl"]]:
    """The texts of `lines` (each with its line ending) and the format read; `where` names the file
    in errors. Raises TextsFileError for a line that is not UTF-8 or, in JSON lines, not an object
    with a `text` string."""
    texts: list[FileText] = []
    chosen: Literal["text", "jsonl"] | None = None if fmt == "auto" else fmt
    hint = " (plain text? use --format-in text)" if fmt == "auto" else ""
    for number, raw in enumerate(lines, 1):
        try:
            line = raw.decode("utf-8").removesuffix("\n").removesuffix("\r")
        except UnicodeDecodeError:
            raise TextsFileError(where, "not UTF-8 text", number) from None
        if number == 1:
            line = line.removeprefix("\ufeff")  # a byte order mark
        if not line.strip():
            continue
        if chosen is None:
            chosen = "jsonl" if line.lstrip().startswith("{") else "text"
        if chosen == "jsonl":
            texts.append(_json_text(line, number, where, hint))
        else:
            texts.append(FileText(number, str(number), line))
    return texts, chosen or "text"


def read_texts(path: str, fmt: Format = "auto") -> tuple[list[FileText], Literal["text", "jsonl"]]:
    """The texts of the file at `path` (`-`: standard input); see `parse_texts`. Raises TextsFileError
    when the file cannot be read too."""
    if path == "-":
        return parse_texts(sys.stdin.buffer, "<stdin>", fmt)
    try:
        with Path(path).open("rb") as file:
            return parse_texts(file, path, fmt)
    except OSError as exc:
        raise TextsFileError(path, f"cannot read: {exc.strerror or exc}") from None
