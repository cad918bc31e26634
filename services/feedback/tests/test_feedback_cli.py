"""`cairn datasets` through typer's CliRunner against the local stack: build, list, show, provenance."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cairn_auth.object_keys import object_store_keyring
from cairn_auth.sealed_rows import open_rows
from cairn_bus.kafka import ensure_topics
from cairn_bus.objects import S3ObjectStore
from cairn_bus.postgres import create_pool
from cairn_events import DatasetPublishedV1
from cairn_events.artifacts import DatasetManifest
from cairn_feedback.adapters.postgres import PostgresRepository
from cairn_feedback.cli import app, load_settings
from cairn_testing import expect_events
from cairn_testing.suites import load_suite

pytestmark = pytest.mark.integration
F: Any = load_suite(Path(__file__).with_name("feedback_factories.py"))


@pytest.fixture
def env(local_stack: dict[str, str], fresh_database: str) -> dict[str, str]:
    return {**local_stack, "CAIRN_POSTGRES_DSN": fresh_database, "COLUMNS": "250"}


@pytest.fixture
async def seeded(env: dict[str, str]) -> AsyncIterator[list[str]]:
    """Four answered requests: two corrected, one rated 5, one rated 2; plus a duplicate correction."""
    pool = await create_pool(env["CAIRN_POSTGRES_DSN"], 1, 2)
    repo = PostgresRepository(pool)
    await repo.migrate()
    ids = [f"req-{uuid.uuid4().hex[:8]}" for _ in range(5)]
    feedback = [
        {"corrected_answer": "Use the reset link; call +1 415 555 2671 if it fails."},
        {"corrected_answer": "Billing is monthly."},
        {"rating": 5},
        {"rating": 2},
        {"corrected_answer": "Billing is monthly."},
    ]
    questions = ["reset?", "billing?", "hours?", "refund?", "billing?"]
    for i, (rid, fb, q) in enumerate(zip(ids, feedback, questions, strict=True)):
        await repo.save_request(F.request(rid), f"{rid}-1")
        await repo.save_screening(F.screening(rid, q), f"{rid}-2")
        await repo.save_response(F.response(rid, f"answer {i}"), f"{rid}-3")
        await repo.save_feedback(F.feedback(f"fb-{rid}", rid, submitted_at=F.at(10 + i), **fb), f"{rid}-4")
    yield ids
    await pool.close()


def invoke(env: dict[str, str], *args: str, code: int = 0) -> str:
    result = CliRunner(env=env).invoke(app, list(args))
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.output


async def test_build_list_show_and_provenance(
    env: dict[str, str], seeded: list[str], kafka_bootstrap: str
) -> None:
    dataset_id = f"cli-{uuid.uuid4().hex[:8]}"
    args = (
        "build",
        dataset_id,
        "--rule",
        "corrected",
        "--rule",
        "min_rating:4",
        "--heldout",
        "0.2",
        "--seed",
        "3",
    )
    await ensure_topics(kafka_bootstrap)  # a fresh broker has no topics until a service or the CLI makes them
    async with expect_events(
        kafka_bootstrap, "cairn.datasets", where=lambda m, e: getattr(e, "dataset_id", None) == dataset_id
    ) as published:
        out = await asyncio.to_thread(invoke, env, *args)
    assert f"{dataset_id} v1" in out
    assert "dropped: duplicate" in out
    assert f"s3://cairn/datasets/{dataset_id}/v1/" in out
    [(_, event)] = published.events
    assert isinstance(event, DatasetPublishedV1)
    assert (event.row_count, event.train_rows + event.heldout_rows, event.heldout_rows >= 1) == (3, 3, True)

    listing = await asyncio.to_thread(invoke, env, "list")
    assert dataset_id in listing
    shown = await asyncio.to_thread(invoke, env, "show", dataset_id, "--version", "1")
    assert "rules: corrected, min_rating:4" in shown
    assert "train.jsonl" in shown
    manifest = DatasetManifest.model_validate_json(
        await asyncio.to_thread(invoke, env, "show", dataset_id, "--json")
    )
    assert manifest.request_ids == sorted(seeded[:3])

    rows = json.loads(await asyncio.to_thread(invoke, env, "provenance", dataset_id, "--json"))
    assert sorted(r["request_id"] for r in rows) == sorted(seeded[:3])
    assert {r["request_id"]: r["source"] for r in rows} == {
        seeded[0]: "corrected",
        seeded[1]: "corrected",
        seeded[2]: "rated",
    }
    assert {r["feedback_id"] for r in rows} == {f"fb-{rid}" for rid in seeded[:3]}
    assert all((r["prompt_name"], r["prompt_version"]) == ("qa", 3) for r in rows)
    table = await asyncio.to_thread(invoke, env, "provenance", dataset_id)
    assert seeded[0] in table
    assert "qa:3" in table

    settings = load_settings_with(env)
    objects = S3ObjectStore.from_settings(settings)
    train = (await asyncio.to_thread(objects.get, event.uri + "train.jsonl")).decode()
    heldout = (await asyncio.to_thread(objects.get, event.uri + "heldout.jsonl")).decode()
    assert "PHONE" not in train + heldout  # beside the stack, its master key seals every row
    keyring = object_store_keyring(objects, "cairn")
    opened = await open_rows(keyring, [json.loads(line) for line in (train + heldout).splitlines()])
    assert "[PHONE]" in json.dumps(opened.rows)
    assert "555 2671" not in json.dumps(opened.rows)

    again = await asyncio.to_thread(invoke, env, "build", dataset_id, "--rule", "corrected")
    assert f"{dataset_id} v2" in again
    assert "v1" in await asyncio.to_thread(invoke, env, "show", dataset_id, "-v", "1")
    await asyncio.to_thread(objects.delete_prefix, f"s3://cairn/datasets/{dataset_id}/")


async def test_errors_are_a_message_and_exit_one(env: dict[str, str], seeded: list[str]) -> None:
    nothing = f"none-{uuid.uuid4().hex[:8]}"
    out = await asyncio.to_thread(invoke, env, "build", nothing, "--rule", "thumbs_up", code=1)
    assert "select no rows" in out
    assert "Traceback" not in out
    assert "unknown rule" in await asyncio.to_thread(invoke, env, "build", "x", "--rule", "best", code=1)
    assert "no dataset 'x'" in await asyncio.to_thread(invoke, env, "show", "x", code=1)
    assert "no dataset 'x'" in await asyncio.to_thread(invoke, env, "provenance", "x", "--json", code=1)
    down = {**env, "CAIRN_POSTGRES_DSN": "postgresql://cairn@127.0.0.1:1/none"}
    out = await asyncio.to_thread(invoke, down, "list", code=1)
    assert out.startswith("error:")


def load_settings_with(env: dict[str, str]) -> Any:
    """The CLI's settings under `env` (what `load_settings` reads from CAIRN_* variables)."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        return load_settings()
