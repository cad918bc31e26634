"""The gateway service: an OpenAI-compatible HTTP API in front of the request path.

It publishes `cairn.request.submitted.v1` on `cairn.requests` and reads `cairn.response.completed.v1`
from `cairn.responses` (and, for streamed answers, `cairn.completion_delta.generated.v1` from
`cairn.completions.deltas`). Unlike the other services it joins no consumer group: every replica must see
every response (a group would give each response to one replica, maybe not the one whose client
waits), so each replica reads the topic from its end with a group-less consumer (`cairn_bus.kafka.
consumer_at_end`) and keeps only the answers to its own requests (`replies.ReplyBook`).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

from cairn_bus import EventRouter
from cairn_bus.service import Health, default_health_checks, serve_metrics_and_health, service_publisher
from cairn_events import CompletionDeltaGeneratedV1, RequestSubmittedV1, ResponseCompletedV1
from cairn_gateway.bootstrap import Deps, build
from cairn_gateway.handlers import on_completion_delta, on_response_completed
from cairn_gateway.settings import Settings
from cairn_observability import configure_logging, configure_tracing, get_logger

router: EventRouter[Deps] = EventRouter("gateway")
router.handler(ResponseCompletedV1)(on_response_completed)
router.handler(CompletionDeltaGeneratedV1)(on_completion_delta)
router.publishes(RequestSubmittedV1)
log = get_logger("cairn.service")


async def serve_gateway(settings: Settings, stop: asyncio.Event, ready: asyncio.Event | None = None) -> Deps:
    """Run the gateway until `stop` is set: topics ensured, producer started, reply listeners at the end
    of `cairn.responses` and `cairn.completions.deltas`, then the HTTP API. Returns its deps once stopped."""
    async with service_publisher(router, settings) as publisher, build(settings, publisher) as deps:
        log.info("service ready", topics=router.topics, api=deps.http.url if deps.http else None)
        if ready is not None:
            ready.set()
        await stop.wait()
        log.info("service stopping")
        return deps


def main() -> None:
    """Entry point of `python -m cairn_gateway`."""
    settings = Settings()
    configure_logging(settings.service_name, settings.log_level, settings.log_format)
    configure_tracing(
        settings.service_name, settings.otel_traces_exporter, settings.otel_exporter_otlp_endpoint
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        health = Health(default_health_checks(settings))
        server = None
        prober = None
        if settings.metrics_port:
            server = serve_metrics_and_health(settings.metrics_port, settings.metrics_host, health)
            prober = asyncio.create_task(health.run(), name="cairn-health")
        try:
            await serve_gateway(settings, stop)
        finally:
            if prober is not None:
                prober.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await prober
            if server is not None:
                server.shutdown()
                server.server_close()

    asyncio.run(run())
