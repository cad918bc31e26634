"""Prompt experiments on live signals: per-variant statistics with confidence intervals, and an
anytime-valid sequential test that says when one variant is significantly better.

The primary metric is the positive-feedback rate: each request of an arm with feedback counts once
(its latest feedback): positive for a thumbs up or a rating at `positive_rating` or above, negative
otherwise. The test is the mixture sequential probability ratio test (mSPRT, normal mixture; Johari,
Pekelis and Walsh, "Always valid inference", 2017) on the difference of two arms' rates:

    Λ = sqrt(V / (V + τ²)) · exp(τ² Δ² / (2 V (V + τ²))),   V = p̄(1 - p̄)(1/n_a + 1/n_b)

with Δ the difference of the two rates, p̄ the pooled rate and τ² the mixing variance. Λ may be
checked after every observation: the chance it ever reaches 1/alpha under no difference is at most alpha
(asymptotically), so peeking does not inflate false positives. With k arms, the leader is compared
with each other arm at alpha/(k - 1) (Bonferroni), and wins when every comparison is significant, every
arm has at least `min_samples` observations, and the guard metrics (refusal rate, groundedness) are
not worse than any other arm's by more than their margins.

The intervals shown per arm are ordinary 95 % intervals for the current sample (Wilson for rates,
normal for means); the decision is the sequential test's, never the intervals'.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Literal

from cairn_evaluator.online.records import FeedbackRecord, PromptAttribution, ResponseRecord

__all__ = [
    "METRIC",
    "TEST",
    "ArmStatistics",
    "Comparison",
    "Estimate",
    "ExperimentVerdict",
    "TestParameters",
    "arm_statistics",
    "decide",
    "mean_interval",
    "msprt_evidence",
    "wilson_interval",
]

METRIC = "positive_feedback_rate"
TEST = "msprt-normal-mixture"
Z95 = NormalDist().inv_cdf(0.975)


@dataclass(frozen=True)
class TestParameters:
    """What the sequential test is held to."""

    __test__ = False  # not a pytest class

    alpha: float = 0.05
    """The false-positive rate controlled over the whole experiment (split over the comparisons)."""
    mixing_variance: float = 0.1
    """τ²: the spread of effects the mixture expects (0.1: differences of about ±0.3 in rate)."""
    min_samples: int = 30
    """Observations (requests with feedback) every arm needs before any verdict."""
    positive_rating: int = 4
    """A rating at or above this counts as positive (thumbs count as they say)."""
    refusal_margin: float = 0.05
    """The winner's refusal rate may exceed another arm's by at most this."""
    groundedness_margin: float = 0.05
    """The winner's mean groundedness may fall below another arm's by at most this."""


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95 % interval; all None when there is nothing to estimate."""

    value: float | None
    low: float | None
    high: float | None
    n: int

    def show(self, digits: int = 3) -> str:
        """`0.812 [0.701, 0.889]`, or `-`."""
        if self.value is None:
            return "-"
        if self.low is None or self.high is None:
            return f"{self.value:.{digits}f}"
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def wilson_interval(successes: int, n: int, z: float = Z95) -> Estimate:
    """The rate `successes / n` with its Wilson score interval (sound near 0 and 1, unlike Wald's)."""
    if n <= 0:
        return Estimate(None, None, None, 0)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return Estimate(round(p, 4), round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4), n)


def mean_interval(values: Sequence[float], z: float = Z95) -> Estimate:
    """The mean with a normal 95 % interval (none below two values)."""
    n = len(values)
    if n == 0:
        return Estimate(None, None, None, 0)
    mean = sum(values) / n
    if n < 2:
        return Estimate(round(mean, 4), None, None, n)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = z * sd / math.sqrt(n)
    return Estimate(round(mean, 4), round(mean - half, 4), round(mean + half, 4), n)


@dataclass(frozen=True)
class ArmStatistics:
    """One arm: its traffic and each signal's estimate."""

    variant: str
    prompt_version: int | None
    requests: int
    positives: int
    positive_rate: Estimate
    """The primary metric; `n` is the number of observations."""
    mean_rating: Estimate
    refusal_rate: Estimate
    groundedness: Estimate

    @property
    def observations(self) -> int:
        """Requests with feedback that counts for the primary metric."""
        return self.positive_rate.n


def _positive(f: FeedbackRecord, positive_rating: int) -> bool | None:
    if f.thumbs is not None:
        return f.thumbs == "up"
    if f.rating is not None:
        return f.rating >= positive_rating
    return None


def arm_statistics(
    attributions: Sequence[PromptAttribution],
    responses: Sequence[ResponseRecord],
    feedback: Sequence[FeedbackRecord],
    positive_rating: int = 4,
) -> list[ArmStatistics]:
    """Per variant (sorted by name): requests, the positive-feedback rate (latest feedback per
    request), the mean rating, the refusal rate and the mean groundedness, with 95 % intervals.
    Responses and feedback of requests outside `attributions` are ignored."""
    variant_of = {a.request_id: a.variant or "-" for a in attributions}
    versions: dict[str, int] = {}
    requests: dict[str, set[str]] = {}
    for a in sorted(attributions, key=lambda a: a.rendered_at):
        versions[variant_of[a.request_id]] = a.prompt_version
        requests.setdefault(variant_of[a.request_id], set()).add(a.request_id)
    latest: dict[str, FeedbackRecord] = {}
    for f in sorted(feedback, key=lambda f: (f.submitted_at, f.event_id)):
        if f.request_id in variant_of and _positive(f, positive_rating) is not None:
            latest[f.request_id] = f
    final: dict[str, ResponseRecord] = {}
    for r in sorted(responses, key=lambda r: (r.completed_at, r.event_id)):
        if r.request_id in variant_of:
            final[r.request_id] = r
    arms: list[ArmStatistics] = []
    for variant in sorted(requests):
        mine = requests[variant]
        opinions = [f for rid, f in latest.items() if rid in mine]
        positives = sum(1 for f in opinions if _positive(f, positive_rating))
        answered = [r for rid, r in final.items() if rid in mine]
        refusals = sum(1 for r in answered if r.refused)
        arms.append(
            ArmStatistics(
                variant=variant,
                prompt_version=versions.get(variant),
                requests=len(mine),
                positives=positives,
                positive_rate=wilson_interval(positives, len(opinions)),
                mean_rating=mean_interval([float(f.rating) for f in opinions if f.rating is not None]),
                refusal_rate=wilson_interval(refusals, len(answered)),
                groundedness=mean_interval([r.groundedness for r in answered if r.groundedness is not None]),
            )
        )
    return arms


def msprt_evidence(successes_a: int, n_a: int, successes_b: int, n_b: int, mixing_variance: float) -> float:
    """The mSPRT likelihood ratio Λ for "the two rates differ" (see the module's docstring); 0 when
    either arm is empty or the pooled rate leaves no variance (both arms all positive or all negative)."""
    if n_a <= 0 or n_b <= 0:
        return 0.0
    pooled = (successes_a + successes_b) / (n_a + n_b)
    v = pooled * (1 - pooled) * (1 / n_a + 1 / n_b)
    if v <= 0.0:
        return 0.0
    delta = successes_a / n_a - successes_b / n_b
    t2 = mixing_variance
    exponent = t2 * delta * delta / (2 * v * (v + t2))
    return math.sqrt(v / (v + t2)) * math.exp(min(exponent, 700.0))


@dataclass(frozen=True)
class Comparison:
    """The leader against one other arm."""

    other: str
    difference: float
    """Leader's rate minus the other's."""
    evidence: float
    """Λ of the mSPRT."""
    significant: bool


Decision = Literal["winner", "continue", "guard_failed"]


@dataclass(frozen=True)
class ExperimentVerdict:
    """The state of the test on one experiment: the arms, the leader's comparisons and the decision."""

    experiment: str
    arms: list[ArmStatistics]
    parameters: TestParameters
    decision: Decision
    reason: str
    leader: str | None = None
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def threshold(self) -> float:
        """The Λ a comparison needs: 1 / (alpha / (k - 1))."""
        others = max(1, len(self.arms) - 1)
        return others / self.parameters.alpha

    @property
    def evidence(self) -> float:
        """The leader's weakest comparison (0 without any)."""
        return min((c.evidence for c in self.comparisons), default=0.0)

    @property
    def winner(self) -> str | None:
        """The winning variant, when the decision is `winner`."""
        return self.leader if self.decision == "winner" else None


def _guard_failures(leader: ArmStatistics, others: Sequence[ArmStatistics], p: TestParameters) -> list[str]:
    failures: list[str] = []
    for other in others:
        mine, theirs = leader.refusal_rate.value, other.refusal_rate.value
        if mine is not None and theirs is not None and mine > theirs + p.refusal_margin:
            failures.append(
                f"refusal rate {mine:.3f} > {other.variant}'s {theirs:.3f} + {p.refusal_margin:g}"
            )
        g_mine, g_theirs = leader.groundedness.value, other.groundedness.value
        if g_mine is not None and g_theirs is not None and g_mine < g_theirs - p.groundedness_margin:
            failures.append(
                f"groundedness {g_mine:.3f} < {other.variant}'s {g_theirs:.3f} - {p.groundedness_margin:g}"
            )
    return failures


def decide(experiment: str, arms: Sequence[ArmStatistics], parameters: TestParameters) -> ExperimentVerdict:
    """The test's verdict on the arms as observed now (arms without observations still count as arms)."""
    p = parameters
    arms = list(arms)
    if len(arms) < 2:
        return ExperimentVerdict(experiment, arms, p, "continue", f"{len(arms)} arm(s) seen; 2 needed")
    short = [a.variant for a in arms if a.observations < p.min_samples]
    ranked = sorted(arms, key=lambda a: (-(a.positive_rate.value or 0.0), a.variant))
    leader, others = ranked[0], ranked[1:]
    threshold = len(others) / p.alpha
    comparisons = [
        Comparison(
            other=o.variant,
            difference=round((leader.positive_rate.value or 0.0) - (o.positive_rate.value or 0.0), 4),
            evidence=msprt_evidence(
                leader.positives, leader.observations, o.positives, o.observations, p.mixing_variance
            ),
            significant=False,
        )
        for o in others
    ]
    comparisons = [
        Comparison(c.other, c.difference, c.evidence, c.difference > 0 and c.evidence >= threshold)
        for c in comparisons
    ]

    def with_(decision: Decision, reason: str) -> ExperimentVerdict:
        return ExperimentVerdict(experiment, arms, p, decision, reason, leader.variant, comparisons)

    if short:
        return with_("continue", f"fewer than {p.min_samples} observations: {', '.join(short)}")
    weak = [c.other for c in comparisons if not c.significant]
    if weak:
        return with_("continue", f"{leader.variant} not yet significantly better than {', '.join(weak)}")
    failures = _guard_failures(leader, others, p)
    if failures:
        return with_("guard_failed", f"{leader.variant} leads but its guards fail: {'; '.join(failures)}")
    return with_("winner", f"{leader.variant} is significantly better (Λ ≥ {threshold:g} against every arm)")
