"""The safety service's Prometheus metrics: instruments of cairn-observability's metric catalog
(served with the bus metrics on `CAIRN_METRICS_PORT`)."""

from cairn_observability.metrics import SAFETY_CHECKS_FIRED, SAFETY_VERDICTS

__all__ = ["SAFETY_CHECKS_FIRED", "SAFETY_VERDICTS"]
