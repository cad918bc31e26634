"""Fakes and fixtures of the safety service's unit tests: a keyword classifier, test policies, deps."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from cairn_bus import Dispatcher, InMemoryPublisher, Outcome, RawRecord
from cairn_bus.publisher import OutgoingMessage
from cairn_events import Event
from cairn_safety.adapters.memory import InMemoryReviewQueue
from cairn_safety.adapters.policy_files import PolicyFiles
from cairn_safety.app import router
from cairn_safety.bootstrap import Deps, build
from cairn_safety.settings import Settings

BANDS = [{"min_score": 0.8, "action": "block"}, {"min_score": 0.5, "action": "review"}]
REDACT = [{"min_score": 0.5, "action": "redact"}]
TEST_POLICIES: dict[str, dict[str, Any]] = {
    "default": {
        "version": 1,
        "input": {
            "toxicity": {"thresholds": BANDS},
            "pii": {"thresholds": REDACT},
            "injection": {"thresholds": BANDS},
            "context_injection": {"thresholds": BANDS},
        },
        "output": {"toxicity": {"thresholds": BANDS}, "pii": {"thresholds": REDACT}},
    },
    "strict": {
        "version": 5,
        "input": {
            "toxicity": {"thresholds": [{"min_score": 0.3, "action": "block"}]},
            "pii": {"thresholds": [{"min_score": 0.5, "action": "block"}]},
            "injection": {"thresholds": [{"min_score": 0.5, "action": "block"}]},
            "context_injection": {"enabled": False},
        },
        "output": {"toxicity": {"thresholds": BANDS}, "pii": {"enabled": False}},
    },
}


GROUNDED = "grounded"
"""The test policy with a groundedness gate on output (see the `grounded_policy` fixture)."""
GROUNDED_POLICY: dict[str, Any] = {
    "version": 2,
    "input": {
        "toxicity": {"thresholds": BANDS},
        "pii": {"thresholds": REDACT},
        "injection": {"thresholds": BANDS},
        "context_injection": {"enabled": False},
    },
    "output": {
        "toxicity": {"thresholds": BANDS},
        "pii": {"thresholds": REDACT},
        "groundedness": {"threshold": 0.7, "action": "flag"},
    },
}


class KeywordClassifier:
    """A ToxicityClassifier that scores by keywords, and remembers the threads it ran in."""

    name = "keywords"

    def __init__(self, scores: dict[str, float] | None = None, default: float = 0.02) -> None:
        self.table = scores if scores is not None else {"idiot": 0.97, "heck": 0.6}
        self.default = default
        self.threads: list[threading.Thread] = []
        self.calls: list[list[str]] = []

    def scores(self, texts: Sequence[str]) -> list[float]:
        self.threads.append(threading.current_thread())
        self.calls.append(list(texts))
        return [
            max([s for k, s in self.table.items() if k in t.lower()], default=self.default) for t in texts
        ]


def write_policies(folder: Path, policies: dict[str, dict[str, Any]] = TEST_POLICIES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in policies.items():
        (folder / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, **body}), encoding="utf-8")
    return folder


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    return write_policies(tmp_path / "policies")


@pytest.fixture
def grounded_policy(policy_dir: Path) -> str:
    """`GROUNDED_POLICY` written into the policy folder beside the others; its name (the tenant)."""
    write_policies(policy_dir, {GROUNDED: GROUNDED_POLICY})
    return GROUNDED


@pytest.fixture
def classifier() -> KeywordClassifier:
    return KeywordClassifier()


@pytest.fixture
def reviews() -> InMemoryReviewQueue:
    return InMemoryReviewQueue()


@pytest.fixture
async def deps(
    policy_dir: Path, classifier: KeywordClassifier, reviews: InMemoryReviewQueue
) -> AsyncIterator[Deps]:
    publisher = InMemoryPublisher("/cairn/safety", allowed_types=router.published_types)
    async with build(
        Settings(), publisher, classifier=classifier, reviews=reviews, policies=PolicyFiles(policy_dir)
    ) as built:
        yield built


@pytest.fixture
def dispatcher(deps: Deps) -> Dispatcher[Deps]:
    return Dispatcher(
        router, deps, deps.publisher, group_id="cairn-safety", retry_backoff_s=0, max_attempts=1
    )


class Upstream:
    """Builds the records other services would produce, and hands them to the dispatcher."""

    def __init__(self, dispatcher: Dispatcher[Deps]) -> None:
        self.dispatcher = dispatcher
        self.publisher = InMemoryPublisher("/cairn/test")
        self.offset = 0

    def record(self, event: Event) -> OutgoingMessage:
        return self.publisher.build(event)

    async def deliver(self, message: OutgoingMessage) -> Outcome:
        self.offset += 1
        record = RawRecord(
            message.topic,
            0,
            self.offset,
            message.value,
            message.key,
            list(message.headers),
            1_741_079_722_000,
        )
        return await self.dispatcher.dispatch(record)


@pytest.fixture
def upstream(dispatcher: Dispatcher[Deps]) -> Upstream:
    return Upstream(dispatcher)
