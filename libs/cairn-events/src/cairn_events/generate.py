"""Write (or check) the generated schema files: `python -m cairn_events.generate [--check]`.

For every registered event type: `schemas/<type-without-version>/v<N>.schema.json` (JSON
Schema draft 2020-12) and `v<N>.avsc` (Avro). Examples and topic files are hand-written and
never touched. `--check` writes nothing and exits 1 listing the files that differ.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from cairn_events.avro_schema import avro_schema
from cairn_events.json_schema import json_schema, render_json
from cairn_events.paths import avro_schema_path, json_schema_path, schemas_dir
from cairn_events.registry import EVENT_TYPES

__all__ = ["expected_files", "main", "stale_files"]

_DESCRIPTION = "Write (or check) the JSON Schema and Avro files generated from the cairn-events models."


def expected_files(root: Path) -> dict[Path, str]:
    """Every generated file under `root` (a `schemas/` folder) with the content it must have."""
    files: dict[Path, str] = {}
    for event_type, event_cls in sorted(EVENT_TYPES.items()):
        files[json_schema_path(event_type, root)] = render_json(json_schema(event_cls))
        files[avro_schema_path(event_type, root)] = render_json(avro_schema(event_cls))
    return files


def stale_files(root: Path) -> list[Path]:
    """Generated files under `root` that are missing or differ from what the models generate."""
    stale = []
    for path, content in expected_files(root).items():
        if not path.is_file() or path.read_text(encoding="utf-8") != content:
            stale.append(path)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m cairn_events.generate", description=_DESCRIPTION)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if any file differs")
    parser.add_argument("--schemas-dir", type=Path, default=None, help="the schemas/ folder (default: found)")
    args = parser.parse_args(argv)
    root: Path = args.schemas_dir or schemas_dir()
    stale = stale_files(root)
    if args.check:
        if stale:
            print("generated schema files differ from the models (run `make schemas`):")
            for path in stale:
                print(f"  {path}")
            return 1
        print(f"{len(expected_files(root))} generated schema files are up to date")
        return 0
    expected = expected_files(root)
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(expected[path], encoding="utf-8")
        print(f"wrote {path}")
    print(f"{len(stale)} of {len(expected)} generated schema files written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
