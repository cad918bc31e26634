"""Screening one input or one output: the checks run concurrently, then the policy decides.

The classifier runs in a worker thread while the PII detectors, injection patterns and (on output)
jailbroken-answer patterns run on the event loop; `decide` turns what they saw into a verdict. On output, an answer the content checks
allow (or redact) then meets the groundedness gate (`domain.grounding`) when it has retrieved chunks:
lexical scoring runs on the event loop, embedding similarity in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from cairn_embedding.groundedness import Embed
from cairn_events import ChatMessage, CompletionGeneratedV1, ContextAssembledV1, ContextChunk, Verdict
from cairn_safety.domain.grounding import GroundingCheck, apply_grounding, check_groundedness
from cairn_safety.domain.injection import InjectionHit, find_injections
from cairn_safety.domain.jailbreak import JailbreakModel, add_jailbreak
from cairn_safety.domain.jailbreak_output import find_jailbreak_output
from cairn_safety.domain.pii import PiiMatch, find_pii, redact
from cairn_safety.domain.policy import CheckPolicy, PiiPolicy, Policy, Stage
from cairn_safety.domain.verdicts import ChunkScan, Decision, Observations, decide
from cairn_safety.ports import ToxicityClassifier, runs_inline

__all__ = ["InputScreening", "OutputScreening", "Screener", "Screening"]


@dataclass(frozen=True)
class Screening:
    """The decision on some texts, and the texts with the personal data that fired redacted."""

    decision: Decision
    texts: list[str]
    redacted: list[str]

    def passed_on(self) -> list[str]:
        """The texts to pass on: redacted when the verdict is `redact`, else as they came."""
        return self.redacted if self.decision.verdict is Verdict.REDACT else self.texts


@dataclass(frozen=True)
class InputScreening:
    """The decision on a request's input, the messages to pass on, and the text a reviewer would see."""

    decision: Decision
    messages: list[ChatMessage]
    review_text: str


@dataclass(frozen=True)
class OutputScreening:
    """The decision on a generated text, the text to pass on, and the text a reviewer would see."""

    decision: Decision
    text: str
    review_text: str
    grounding: GroundingCheck | None = None
    """The groundedness gate's result, when it ran."""


class Screener:
    """Runs the checks of one policy stage on texts, concurrently; `embed` (texts in, vectors out) serves
    the groundedness gate of policies that ask for semantic scoring (lexical without it)."""

    def __init__(
        self,
        classifier: ToxicityClassifier,
        embed: Embed | None = None,
        jailbreak: JailbreakModel | None = None,
    ) -> None:
        self.classifier = classifier
        self.embed = embed
        self._jailbreak_model = jailbreak
        """The input's learned jailbreak detector; the shipped one (read on first use) when None."""

    def jailbreak_model(self) -> JailbreakModel:
        """The learned jailbreak detector the input policy's `jailbreak` check uses."""
        if self._jailbreak_model is None:
            from cairn_safety.adapters.jailbreak_model import shipped_model

            self._jailbreak_model = shipped_model()
        return self._jailbreak_model

    async def _toxicity(self, check: CheckPolicy, texts: Sequence[str]) -> list[float] | None:
        if not check.enabled:
            return None
        if not texts:
            return []
        if runs_inline(self.classifier):
            return self.classifier.scores(list(texts))
        return await asyncio.to_thread(self.classifier.scores, list(texts))

    @staticmethod
    async def _pii(check: PiiPolicy, texts: Sequence[str]) -> list[list[PiiMatch]] | None:
        if not check.enabled:
            return None
        return [find_pii(t, check.kinds) for t in texts]

    @staticmethod
    async def _injection(check: CheckPolicy, texts: Sequence[str]) -> list[list[InjectionHit]] | None:
        if not check.enabled:
            return None
        return [find_injections(t) for t in texts]

    @staticmethod
    async def _jailbreak(check: CheckPolicy | None, texts: Sequence[str]) -> list[list[InjectionHit]] | None:
        if check is None or not check.enabled:
            return None
        return [find_jailbreak_output(t) for t in texts]

    @staticmethod
    async def _context(check: CheckPolicy | None, chunks: Sequence[ContextChunk]) -> list[ChunkScan] | None:
        if check is None or not check.enabled:
            return None
        return [ChunkScan(c.chunk_id, c.document_id, find_injections(c.text)) for c in chunks]

    async def screen(
        self, stage: Stage, policy: Policy, texts: Sequence[str], chunks: Sequence[ContextChunk] = ()
    ) -> Screening:
        """Run the stage's checks on `texts` (and, on input, injection patterns on `chunks`) and decide."""
        texts = list(texts)
        rules = policy.input if stage == "input" else policy.output
        context_rules = policy.input.context_injection if stage == "input" else None
        jailbreak_rules = policy.output.jailbreak if stage == "output" else None
        toxicity, pii, injection, context, jailbreak = await asyncio.gather(
            self._toxicity(rules.toxicity, texts),
            self._pii(rules.pii, texts),
            self._injection(rules.injection, texts),
            self._context(context_rules, chunks),
            self._jailbreak(jailbreak_rules, texts),
        )
        seen = Observations(
            toxicity=toxicity,
            classifier=self.classifier.name,
            pii=pii,
            injection=injection,
            context=context,
            jailbreak=jailbreak,
        )
        decision = decide(stage, policy, seen)
        if stage == "input" and policy.input.jailbreak.enabled:
            model = self.jailbreak_model()
            decision = add_jailbreak(decision, policy.input.jailbreak, model.scores(texts), model.version)
        if pii is None or not decision.redact_kinds:
            redacted = texts
        else:
            redacted = [redact(t, m, decision.redact_kinds) for t, m in zip(texts, pii, strict=True)]
        return Screening(decision, texts, redacted)

    async def screen_input(self, event: ContextAssembledV1, policy: Policy) -> InputScreening:
        """Screen the user's turns (toxicity, PII, injection) and the retrieved chunks (injection)."""
        user_at = [i for i, m in enumerate(event.messages) if m.role == "user"]
        screening = await self.screen(
            "input", policy, [event.messages[i].content for i in user_at], event.chunks
        )
        messages = list(event.messages)
        for i, text in zip(user_at, screening.passed_on(), strict=True):
            if text != messages[i].content:
                messages[i] = ChatMessage(role="user", content=text)
        review_text = screening.redacted[-1] if screening.redacted else ""
        return InputScreening(screening.decision, messages, review_text)

    async def _groundedness(
        self, policy: Policy, text: str, chunks: Sequence[ContextChunk]
    ) -> GroundingCheck | None:
        rules = policy.output.groundedness
        if not rules.enabled or not chunks:
            return None
        if rules.semantic and self.embed is not None:
            return await asyncio.to_thread(check_groundedness, rules, text, chunks, self.embed)
        return check_groundedness(rules, text, chunks)

    async def screen_output(self, event: CompletionGeneratedV1, policy: Policy) -> OutputScreening:
        """Screen the generated text (toxicity, PII and, when enabled, injection and jailbroken-answer
        patterns); an answer
        allowed or redacted then meets the groundedness gate when it has chunks. `cite` replaces the
        text by the cited passages (their personal data redacted like the answer's); `review` raises
        the verdict to review (the reviewer sees the answer)."""
        screening = await self.screen("output", policy, [event.text])
        decision, text = screening.decision, screening.passed_on()[0]
        if decision.verdict not in (Verdict.ALLOW, Verdict.REDACT):
            return OutputScreening(decision, text, screening.redacted[0])
        gate = await self._groundedness(policy, event.text, event.chunks)
        if gate is None:
            return OutputScreening(decision, text, screening.redacted[0])
        decision = apply_grounding(decision, gate)
        if gate.replacement is not None:
            text = self._redact_passages(policy, gate.replacement)
        return OutputScreening(decision, text, screening.redacted[0], gate)

    @staticmethod
    def _redact_passages(policy: Policy, text: str) -> str:
        """The passages with the personal data the output policy would redact replaced by placeholders."""
        pii = policy.output.pii
        if not pii.enabled:
            return text
        matches = find_pii(text, pii.kinds)
        kinds = frozenset(m.kind for m in matches if pii.action_for(m.confidence) is Verdict.REDACT)
        return redact(text, matches, kinds) if kinds else text
