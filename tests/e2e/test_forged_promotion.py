"""A forged `model.promoted` on the broker changes nothing: the consumers dead-letter it unread.

The inference, evaluator and audit services run as processes with the stack's signing keys (each
service signs with its own key, every service's and the CLI's public key is trusted). Written
straight onto `cairn.models`: a promotion without a signature, one signed with a key nobody trusts,
and one signed with the inference service's own key (trusted, but inference does not produce
`cairn.models`). Each lands on `cairn.deadletter` once per consumer (audit, evaluator, inference)
with its reason; the registry keeps the version in `dev` and inference never applies it. A genuine
promotion, by the `cairn models promote` CLI with the CLI's key, still goes through.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import uuid
from datetime import UTC, datetime

import pytest

from cairn_bus.signing import Signer, generate_private_key_pem
from cairn_events import (
    DeadLetterKind,
    DeadLetterRecordedV1,
    ModelPromotedV1,
    ModelRegisteredV1,
    ModelStage,
)
from cairn_testing.events import expect_events
from cairn_testing.processes import CAIRN, ServiceProcesses

from .harness import REPO, Upstream, key_of, send

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

E2E_SERVICES = ["audit", "evaluator", "inference"]
CONSUMERS = {"audit", "evaluator", "inference"}  # every consumer of cairn.models verifies
MODEL = f"forgery-{uuid.uuid4().hex[:8]}"


def cairn(services: ServiceProcesses, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**services.env, "COLUMNS": "250"}
    return subprocess.run([CAIRN, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)


def stage_of(services: ServiceProcesses, version: int) -> str | None:
    shown = cairn(services, "models", "show", MODEL, str(version))
    if shown.returncode != 0:
        return None
    return shown.stdout.split("stage:")[1].split()[0]


def inference_log_lines(services: ServiceProcesses, message: str) -> list[str]:
    return [
        line
        for line in services.log("inference", 2000).splitlines()
        if f'"{message}"' in line and MODEL in line
    ]


async def eventually(check: object, what: str, timeout: float = 90.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError(f"{what} within {timeout}s")
        await asyncio.sleep(0.5)


def original_id(letter: DeadLetterRecordedV1) -> str | None:
    for header in letter.original_headers:
        if header.key == "ce_id":
            return base64.b64decode(header.value_b64).decode()
    return None


def promotion() -> ModelPromotedV1:
    return ModelPromotedV1(
        model_name=MODEL,
        version=1,
        from_stage=None,
        to_stage=ModelStage.PRODUCTION,
        promoted_by="mallory",
        reason="forged",
        promoted_at=datetime.now(UTC),
    )


@pytest.fixture(scope="module")
async def registered(services: ServiceProcesses, upstream: Upstream) -> int:
    """Version 1 of MODEL, registered by the CLI (signed with its key), known to evaluator and inference."""
    registration = ModelRegisteredV1(
        model_name=MODEL,
        version=1,
        base_model="HuggingFaceTB/SmolLM2-135M-Instruct",
        config={},
        metrics={},
        code_version="e2e",
        registered_at=datetime.now(UTC),
    )
    await send(upstream, registration, "/cairn/cli", key_of(services, "cli"))
    await eventually(lambda: stage_of(services, 1) == "dev", "the evaluator never registered it")
    await eventually(
        lambda: inference_log_lines(services, "model version registered"), "inference never registered it"
    )
    return 1


async def test_forged_promotions_are_dead_lettered_and_change_nothing(
    services: ServiceProcesses, upstream: Upstream, registered: int, kafka_bootstrap: str
) -> None:
    forgeries: dict[str, tuple[DeadLetterKind, str]] = {}
    async with expect_events(
        kafka_bootstrap,
        "cairn.deadletter",
        where=lambda _, e: isinstance(e, DeadLetterRecordedV1) and original_id(e) in forgeries,
        count=3 * len(CONSUMERS),
        timeout=120,
        settle=2.0,
    ) as dead:
        unsigned = await send(upstream, promotion(), "/cairn/evaluator", None)
        forgeries[unsigned] = (DeadLetterKind.UNSIGNED, "must be signed")
        stranger = Signer.from_pem(generate_private_key_pem())
        untrusted = await send(upstream, promotion(), "/cairn/evaluator", stranger)
        forgeries[untrusted] = (DeadLetterKind.FORGED, f"key {stranger.key_id!r}, which is not trusted")
        # a real key of the platform, but inference does not produce cairn.models
        wrong_service = await send(upstream, promotion(), "/cairn/evaluator", key_of(services, "inference"))
        forgeries[wrong_service] = (DeadLetterKind.FORGED, "which is not a producer of its topic")

    letters = [
        e for _, e in dead.events if isinstance(e, DeadLetterRecordedV1) and original_id(e) in forgeries
    ]
    by_forgery: dict[str, set[str]] = {}
    for letter in letters:
        forged_id = original_id(letter)
        assert forged_id is not None
        kind, reason = forgeries[forged_id]
        assert letter.error_kind is kind, letter.reason
        assert reason in letter.reason
        assert letter.origin_topic == "cairn.models"
        by_forgery.setdefault(forged_id, set()).add(letter.consumer_group.split("-")[1])
    assert by_forgery == dict.fromkeys(forgeries, CONSUMERS)

    # production unchanged: the registry keeps the version in dev, inference never applied a promotion
    assert stage_of(services, registered) == "dev"
    assert inference_log_lines(services, "model version promoted") == []


async def test_a_genuine_promotion_still_goes_through(services: ServiceProcesses, registered: int) -> None:
    promoted = cairn(
        services, "models", "promote", MODEL, str(registered), "--to", "production", "--reason", "e2e"
    )
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert stage_of(services, registered) == "production"
    await eventually(
        lambda: inference_log_lines(services, "model version promoted"),
        "inference never applied the CLI's signed promotion",
    )
