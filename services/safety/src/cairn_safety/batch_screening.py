"""Screening many texts one by one under one policy, as the event path screens each request: what
`POST /v1/screen` and `cairn safety check --file` share.

Each text is screened on its own (`Screener.screen` with that text alone), so its verdict is the one
the service would give a request whose user turn (input) or answer (output) it is. Checks the policy
asks for that need what a lone text does not carry are reported as skipped, never guessed: the
output groundedness gate scores an answer against the retrieved chunks it was generated from.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from cairn_events import Verdict
from cairn_safety.domain.policy import Policy, Stage
from cairn_safety.domain.verdicts import Decision
from cairn_safety.screening import Screener, Screening

__all__ = ["GROUNDEDNESS", "VERDICT_ORDER", "SkippedCheck", "TextScreening", "screen_each", "skipped_checks"]

VERDICT_ORDER = (Verdict.ALLOW, Verdict.REDACT, Verdict.REVIEW, Verdict.BLOCK)
"""The verdicts from the mildest to the most severe, as counts list them."""
GROUNDEDNESS = "groundedness"
"""The name of the output groundedness gate, as skipped checks name it."""


@dataclass(frozen=True)
class SkippedCheck:
    """A check the policy asks for that could not judge the text, and why."""

    check: str
    reason: str


@dataclass(frozen=True)
class TextScreening:
    """One text's screening, how long it took and the policy's checks that could not run on it."""

    screening: Screening
    seconds: float
    skipped: tuple[SkippedCheck, ...]

    @property
    def decision(self) -> Decision:
        """The verdict, findings and reasons."""
        return self.screening.decision

    @property
    def passed_on(self) -> str:
        """The text as the service would pass it on: personal data that fired redacted for `redact`."""
        return self.screening.passed_on()[0]


def skipped_checks(stage: Stage, policy: Policy) -> tuple[SkippedCheck, ...]:
    """The checks of `policy`'s `stage` that cannot judge a text given without retrieved context."""
    if stage == "output" and policy.output.groundedness.enabled:
        reason = (
            "the gate scores an answer against the retrieved chunks it was generated from; none were given"
        )
        return (SkippedCheck(GROUNDEDNESS, reason),)
    return ()


async def screen_each(
    screener: Screener, stage: Stage, policy: Policy, texts: Sequence[str]
) -> AsyncIterator[TextScreening]:
    """Screen each of `texts` on its own under `policy`'s `stage`, in order, yielding as each is done."""
    skipped = skipped_checks(stage, policy)
    for text in texts:
        started = time.perf_counter()
        screening = await screener.screen(stage, policy, [text])
        yield TextScreening(screening, time.perf_counter() - started, skipped)
