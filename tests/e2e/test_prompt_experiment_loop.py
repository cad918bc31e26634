"""The prompt experiment loop end to end, through topics only: a prompt with two versions and an
experiment whose policy is `promote`; live requests split over both arms; feedback favours one; the
evaluator's sequential test concludes on `cairn.experiments`; the prompt store moves the label to the
winner and ends the experiment (both on `cairn.admin`); a later request renders the winner.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from cairn_bus.kafka import consumer_at_end, events_in
from cairn_events import (
    AdminActionRecordedV1,
    Event,
    ExperimentConcludedV1,
    FeedbackSubmittedV1,
    RequestSubmittedV1,
    ResponseStatus,
)
from cairn_testing.processes import ServiceProcesses, run_cairn

from .harness import REPO, Upstream, new_request_id

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

E2E_SERVICES = ["prompt-store", "retriever", "safety", "inference", "evaluator"]
MIN_SAMPLES = 5  # per arm; with every answer of one arm liked and none of the other, 7 per arm conclude
E2E_SERVICE_ENV = {"evaluator": {"CAIRN_EXPERIMENT_MIN_SAMPLES": str(MIN_SAMPLES)}}
POLICY_ACTOR = "policy:experiment-winner"  # cairn_prompt_store.winners.POLICY_ACTOR (no service import)


def push_two_versions(services: ServiceProcesses, folder: Path, name: str) -> None:
    """The `qa` prompt as `name`: version 1 labelled production, version 2 with no label."""
    text = (REPO / "infra" / "prompts" / "qa.yaml").read_text(encoding="utf-8")
    live = text.replace("\nname: qa\n", f"\nname: {name}\n")
    assert live != text
    short = live.replace("Answer in a few sentences.", "Answer in one short sentence.")
    assert short != live
    (folder / "v1.yaml").write_text(live, encoding="utf-8")
    (folder / "v2.yaml").write_text(short, encoding="utf-8")
    run_cairn(services.env, "prompts", "push", str(folder / "v1.yaml"), "--label", "production", cwd=REPO)
    out = run_cairn(services.env, "prompts", "push", str(folder / "v2.yaml"), cwd=REPO)
    assert re.search(rf"\b{re.escape(name)}:2 \(new version\)", out), out


def ask(prompt: str, user: str) -> RequestSubmittedV1:
    return RequestSubmittedV1.model_validate(
        {
            "request_id": new_request_id("exp"),
            "prompt": prompt,  # a bare name resolves through production: the experiment applies
            "variables": {"question": "What does the pass statement do?"},
            "user_id": user,
            "retrieval": {"top_k": 1},
            "params": {"max_tokens": 8, "temperature": 0.0},
            "submitted_at": datetime.now(UTC).isoformat(),
        }
    )


class Watch:
    """Collects the events of one topic produced from now on."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self.events: list[Event] = []

    async def poll(self) -> None:
        for _, event in events_in(await self.consumer.getmany(timeout_ms=200)):
            self.events.append(event)


async def watch(bootstrap: str, topic: str) -> Watch:
    return Watch(await consumer_at_end(bootstrap, topic))


async def test_a_significant_winner_is_promoted_by_policy_and_then_served(
    services: ServiceProcesses, upstream: Upstream, kafka_bootstrap: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    prompt, experiment = f"expqa-{tag}", f"exp-{tag}"
    push_two_versions(services, tmp_path, prompt)
    run_cairn(
        services.env,
        *("prompts", "experiments", "set", prompt, "--name", experiment),
        *("--variant", "control=1", "--variant", "short=2", "--on-winner", "promote"),
        cwd=REPO,
    )
    conclusions = await watch(kafka_bootstrap, "cairn.experiments")
    admin = await watch(kafka_bootstrap, "cairn.admin")
    try:
        concluded: ExperimentConcludedV1 | None = None
        served: dict[int, int] = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 600
        user = 0
        while concluded is None:
            assert loop.time() < deadline, f"no conclusion in time; arms served {served}"
            batch = [ask(prompt, f"user-{tag}-{user + i}") for i in range(8)]
            user += len(batch)
            for request in batch:
                await upstream.submit(request)
            for request in batch:
                answer = await upstream.response(request.request_id, settle=0.0)
                assert answer.status is ResponseStatus.COMPLETED, answer
                assert answer.prompt_version in (1, 2)
                served[answer.prompt_version] = served.get(answer.prompt_version, 0) + 1
                liked = "up" if answer.prompt_version == 2 else "down"  # users prefer the short version
                await upstream.submit(
                    FeedbackSubmittedV1(
                        feedback_id=f"fb-{request.request_id}",
                        request_id=request.request_id,
                        thumbs=liked,
                        submitted_at=datetime.now(UTC),
                    )
                )
            for _ in range(25):  # the evaluator observes the feedback and re-checks the experiment
                await conclusions.poll()
                found = [
                    e
                    for e in conclusions.events
                    if isinstance(e, ExperimentConcludedV1) and e.experiment == experiment
                ]
                if found:
                    concluded = found[0]
                    break
        assert (concluded.prompt_name, concluded.winner, concluded.winner_prompt_version) == (
            prompt,
            "short",
            2,
        )
        assert concluded.evidence >= concluded.threshold == 20.0
        arms = {a.variant: a for a in concluded.arms}
        assert arms["short"].positive_rate == 1.0
        assert arms["control"].positive_rate == 0.0
        assert min(a.observations for a in concluded.arms) >= MIN_SAMPLES

        actions: list[AdminActionRecordedV1] = []
        for _ in range(150):
            await admin.poll()
            actions = [
                e
                for e in admin.events
                if isinstance(e, AdminActionRecordedV1)
                and e.target.startswith(f"prompt:{prompt}")
                and e.actor == POLICY_ACTOR
            ]
            if len(actions) >= 2:
                break
        moved = next(a for a in actions if a.action == "prompt.label.moved")
        ended = next(a for a in actions if a.action == "prompt.experiment.cleared")
        assert moved.target == f"prompt:{prompt}@production"
        assert (moved.details["from_version"], moved.details["to_version"]) == (1, 2)
        assert moved.details["conclusion_id"] == concluded.conclusion_id
        assert ended.details["experiment"] == experiment

        # the label now points at the winner and the experiment is over: every user gets version 2
        later = [ask(prompt, f"user-{tag}-late-{i}") for i in range(3)]
        for request in later:
            await upstream.submit(request)
        for request in later:
            answer = await upstream.response(request.request_id, settle=0.0)
            assert answer.prompt_version == 2
        shown = run_cairn(services.env, "prompts", "show", f"{prompt}@production", cwd=REPO)
        assert f"# {prompt}:2  labels: production" in shown
        cli_env = {**services.env, **E2E_SERVICE_ENV["evaluator"]}  # the evaluator's test settings
        stats = run_cairn(
            cli_env, "quality", "experiment", experiment, "--prompt", prompt, "--json", cwd=REPO
        )
        report: dict[str, Any] = json.loads(stats)
        assert report["published"] is True
        assert (report["decision"], report["winner"]) == ("winner", "short")
        print(f"experiment concluded after {sum(served.values())} requests: served per version {served}")
    finally:
        await conclusions.consumer.stop()
        await admin.consumer.stop()
