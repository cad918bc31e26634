"""Pure parts: the training schedule, flattened configs, tokenised examples."""

from __future__ import annotations

from pathlib import Path

from cairn_tuner.adapters.tokenise import IGNORE, collate, encode_row
from cairn_tuner.domain.continual import DEFAULT_REPLAY_FRACTION, ProductionVersion, plan_start, replay_sample
from cairn_tuner.domain.naming import flatten_config
from cairn_tuner.domain.schedule import batch_plan, total_steps

from .conftest import TINY, job, lora, row, rows


def test_steps_come_from_max_steps_or_epochs() -> None:
    assert total_steps(10, lora(max_steps=None, epochs=3, batch_size=4)) == 9
    assert total_steps(10, lora(max_steps=7)) == 7


def test_the_batch_plan_is_seeded_and_covers_every_row_each_epoch() -> None:
    config = lora(max_steps=None, epochs=2, batch_size=3)
    plan = batch_plan(7, config)
    assert [len(b) for b in plan] == [3, 3, 1, 3, 3, 1]
    assert sorted(i for b in plan[:3] for i in b) == list(range(7))
    assert sorted(i for b in plan[3:] for i in b) == list(range(7))
    assert plan == batch_plan(7, config)
    assert plan != batch_plan(7, lora(max_steps=None, epochs=2, batch_size=3, seed=1))
    assert len(batch_plan(2, lora(max_steps=5, batch_size=4))) == 5


def test_flattened_configs_are_scalars() -> None:
    flat = flatten_config(lora(max_steps=None), max_seq_len=256)
    assert flat["target_modules"] == "q_proj,v_proj"
    assert flat["max_seq_len"] == 256
    assert "max_steps" not in flat
    assert all(isinstance(v, str | int | float | bool) for v in flat.values())


def test_only_the_completion_carries_labels(models_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(models_dir / TINY))
    example = encode_row(tokenizer, row("What is the capital of France?", "Paris."), 512)
    targets = [t for t in example.labels if t != IGNORE]
    assert len(example.input_ids) == len(example.labels)
    assert example.labels[0] == IGNORE
    assert tokenizer.decode(targets) == "Paris.<|im_end|>\n"
    assert example.input_ids[-len(targets) :] == targets
    prompt = tokenizer.decode(example.input_ids[: -len(targets)])
    assert prompt.endswith("<|im_start|>assistant\n")
    assert "capital of France" in prompt


def test_long_prompts_lose_their_start(models_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(models_dir / TINY))
    example = encode_row(tokenizer, row("word " * 300 + "LAST QUESTION?", "Paris."), 64)
    assert len(example.input_ids) == 64
    text = tokenizer.decode(example.input_ids)
    assert "LAST QUESTION?" in text
    assert text.endswith("Paris.<|im_end|>\n")
    assert "system" not in text
    batch = collate([example, encode_row(tokenizer, row("Hi?", "Yo."), 64)], pad_id=0)
    assert batch["input_ids"].shape == (2, 64)
    assert int(batch["attention_mask"][1].sum()) < 64
    assert int((batch["labels"][1] != IGNORE).sum()) == len(
        [t for t in encode_row(tokenizer, row("Hi?", "Yo."), 64).labels if t != IGNORE]
    )


def test_a_job_starts_from_the_base_unless_it_asks_for_production() -> None:
    production = ProductionVersion("cairn-qa", 3, "s3://cairn/adapters/job-3/")
    plan = plan_start(job(), "cairn-qa", production)
    assert (plan.parent, plan.replay_fraction, plan.start_from) == (None, 0.0, "base")
    assert plan.note == f"starting from the base model {TINY}"


def test_a_production_job_continues_the_production_adapter_with_the_default_replay() -> None:
    production = ProductionVersion("cairn-qa", 3, "s3://cairn/adapters/job-3/")
    plan = plan_start(job(config=lora(start_from="production")), "cairn-qa", production)
    assert (plan.parent, plan.replay_fraction, plan.start_from) == (
        production,
        DEFAULT_REPLAY_FRACTION,
        "production",
    )
    assert "cairn-qa:3" in plan.note
    again = plan_start(job(config=lora(start_from="production", replay_fraction=0.0)), "cairn-qa", production)
    assert (again.parent, again.replay_fraction) == (production, 0.0)


def test_a_production_job_without_a_production_adapter_starts_from_the_base_and_says_why() -> None:
    asked = job(config=lora(start_from="production", replay_fraction=0.5))
    none = plan_start(asked, "cairn-qa", None)
    assert (none.parent, none.replay_fraction, none.start_from) == (None, 0.0, "base")
    assert none.note == f"starting from the base model {TINY}: cairn-qa has no production version"
    base = plan_start(asked, "cairn-qa", ProductionVersion("cairn-qa", 1, None))
    assert (base.parent, base.start_from) == (None, "base")
    assert base.note.endswith("production cairn-qa:1 has no adapter")


def test_the_replay_sample_is_seeded_deterministic_and_leaves_out_rows_seen_now() -> None:
    older = rows(20)
    first = replay_sample(older, 0.3, seed=7)
    assert first == replay_sample(older, 0.3, seed=7)
    assert len(first) == 6
    assert [r.row_id for r in first] == sorted(r.row_id for r in first)  # file order kept
    assert replay_sample(older, 0.3, seed=8) != first
    seen = {r.row_id for r in older[:10]}
    kept = replay_sample(older, 0.5, seed=7, exclude=seen)
    assert len(kept) == 5
    assert not {r.row_id for r in kept} & seen
    assert replay_sample(older, 0.01, seed=7) != []  # at least one row when asked for any
    assert replay_sample(older, 1.0, seed=7) == older
    assert replay_sample(older, 0.0, seed=7) == []
    assert replay_sample(older, 0.5, seed=7, exclude={r.row_id for r in older}) == []
