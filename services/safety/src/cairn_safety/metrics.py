"""The safety service's own Prometheus metrics (served with the bus metrics on `CAIRN_METRICS_PORT`)."""

from prometheus_client import Counter

SAFETY_VERDICTS = Counter(
    "cairn_safety_verdicts_total",
    "Screenings by stage (input, output), verdict and policy.",
    ["stage", "verdict", "policy"],
)
SAFETY_CHECKS_FIRED = Counter(
    "cairn_safety_checks_fired_total",
    "Checks whose threshold was crossed, by stage and check (e.g. toxicity, pii.email).",
    ["stage", "check"],
)
