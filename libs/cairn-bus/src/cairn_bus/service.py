"""Runs one service: topics ensured, producer started, dependencies built, consumer group joined.

A service's `app.py` passes its router, settings and a dependency factory; `run_service` handles
signals, `serve` is the same as a coroutine for tests that run a service inside their loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol, TypeVar

from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.message import StreamMessage

from cairn_bus.dispatcher import Dispatcher
from cairn_bus.fetching import FetchPacer, wake_on_records
from cairn_bus.kafka import (
    KafkaPublisher,
    broker_security,
    ensure_topics,
    make_producer,
    record_from_kafka,
    start_client,
)
from cairn_bus.publisher import Publisher
from cairn_bus.router import EventRouter
from cairn_bus.settings import PostgresSettings, ServiceSettings
from cairn_observability import (
    CONSUMER_LAG,
    configure_logging,
    configure_tracing,
    get_logger,
)

D = TypeVar("D")
S = TypeVar("S", bound=ServiceSettings)
DepsFactory = Callable[[S, Publisher], AbstractAsyncContextManager[D]]
log = get_logger("cairn.service")


class PartitionLike(Hashable, Protocol):
    """A topic partition as aiokafka's `TopicPartition` shows it."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...


class LagSource(Protocol):
    """What lag is computed from: the subset of `AIOKafkaConsumer` that knows offsets."""

    def assignment(self) -> Iterable[Any]: ...

    def highwater(self, partition: Any) -> int | None: ...

    async def position(self, partition: Any) -> int: ...


def consumer_lag(highwater: int, position: int) -> int:
    """Records of a partition the consumer has not taken yet: highwater - position, never below 0.

    Both are *next* offsets (highwater: of the next record produced; position: of the next record
    this consumer takes), so a consumer that took everything has lag 0.
    """
    return max(0, highwater - position)


async def partition_lags(consumer: LagSource, timeout_s: float = 1.0) -> dict[tuple[str, int], int]:
    """The lag of every assigned partition whose highwater is known (it is after a first fetch)."""
    lags: dict[tuple[str, int], int] = {}
    for tp in consumer.assignment():
        try:
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            position = await asyncio.wait_for(consumer.position(tp), timeout_s)
        except Exception as exc:  # revoked meanwhile, or no position yet: skip it this time
            log.debug("no lag for partition", topic=tp.topic, partition=tp.partition, error=repr(exc))
            continue
        lags[(tp.topic, tp.partition)] = consumer_lag(highwater, position)
    return lags


class ConsumerLagRecorder:
    """Keeps `cairn_consumer_lag{service,group,topic,partition}` in step with one consumer.

    `record` is called after each batch; partitions the consumer no longer holds (rebalanced to
    another member) are removed from the gauge, so the sum over members stays the group's lag.
    """

    def __init__(self, service: str, group: str, gauge: Any = CONSUMER_LAG) -> None:
        self.service, self.group, self.gauge = service, group, gauge
        self._reported: set[tuple[str, int]] = set()

    async def record(self, consumer: LagSource) -> dict[tuple[str, int], int]:
        """Compute and publish the lag of each assigned partition; returns it."""
        assigned = {(tp.topic, tp.partition) for tp in consumer.assignment()}
        lags = await partition_lags(consumer)
        for (topic, partition), lag in lags.items():
            self.gauge.labels(self.service, self.group, topic, str(partition)).set(lag)
        for topic, partition in self._reported - assigned:
            with contextlib.suppress(KeyError):
                self.gauge.remove(self.service, self.group, topic, str(partition))
        self._reported = (self._reported & assigned) | set(lags)
        return lags


class ThrottledLag:
    """Records a consumer's lag after a batch at most once per `interval_s`: computing it walks every
    assigned partition (the audit service holds ~80), which cost more than handling a small batch.
    A batch that comes sooner schedules one trailing update at the end of the interval, so the
    gauge still settles on the lag after the last batch of a burst.
    """

    def __init__(self, recorder: ConsumerLagRecorder, interval_s: float) -> None:
        self.recorder, self.interval_s = recorder, interval_s
        self._last = float("-inf")
        self._consumer: Any = None
        self._trailing: asyncio.Task[None] | None = None

    async def after_batch(self, consumer: Any) -> None:
        """Record now when the interval has passed, else make sure one update follows it."""
        loop = asyncio.get_running_loop()
        self._consumer = consumer
        wait = self._last + self.interval_s - loop.time()
        if wait <= 0:
            self._last = loop.time()
            await _record_lag(self.recorder, consumer)
        elif self._trailing is None or self._trailing.done():
            self._trailing = asyncio.create_task(self._later(wait), name="consumer-lag")

    async def _later(self, wait: float) -> None:
        await asyncio.sleep(wait)
        self._last = asyncio.get_running_loop().time()
        await _record_lag(self.recorder, self._consumer)

    async def close(self) -> None:
        """Cancel a pending trailing update (the consumer is stopping)."""
        if self._trailing is not None:
            self._trailing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._trailing


HealthCheck = Callable[[], Awaitable[None]]
"""One dependency's probe: returns when it is reachable, raises (any exception) when it is not."""


class Health:
    """What `GET /healthz` reports: `ok`, `degraded` (a dependency failed its last probe; the service
    keeps running and retries its work), or `starting` before the first round of probes.

    `run` probes every check every `interval_s` (each within `timeout_s`) until cancelled; `report`
    is safe to call from another thread (the HTTP server's).
    """

    def __init__(
        self, checks: Mapping[str, HealthCheck], *, interval_s: float = 2.0, timeout_s: float = 5.0
    ) -> None:
        self.checks = dict(checks)
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._state: dict[str, Any] = {"status": "starting", "checks": {}}

    async def probe(self) -> dict[str, Any]:
        """Run every check once; the new state (also what `report` returns from now on)."""
        results: dict[str, str] = {}
        for name, check in self.checks.items():
            try:
                await asyncio.wait_for(check(), self.timeout_s)
            except Exception as exc:
                results[name] = f"unreachable: {exc!r}"
            else:
                results[name] = "ok"
        status = "ok" if all(r == "ok" for r in results.values()) else "degraded"
        if status != self._state["status"]:
            log_call = log.info if status == "ok" else log.warning
            log_call("health changed", status=status, checks=results)
        self._state = {"status": status, "checks": results}
        return self._state

    async def run(self) -> None:
        """Probe forever, every `interval_s`."""
        while True:
            await self.probe()
            await asyncio.sleep(self.interval_s)

    def report(self) -> tuple[int, bytes]:
        """HTTP status (200 when ok, else 503) and the JSON body."""
        state = self._state
        return (200 if state["status"] == "ok" else 503), json.dumps(state).encode()


def postgres_check(dsn: str) -> HealthCheck:
    """A check that runs `SELECT 1` on a connection to `dsn` it keeps between probes (opening one every
    probe forked a PostgreSQL backend per service every 2 s: most of an idle database's CPU); a
    failed probe drops the connection, and the next one connects again."""
    kept: Any = None

    async def check() -> None:
        import asyncpg

        nonlocal kept
        if kept is None or kept.is_closed():
            kept = await asyncpg.connect(dsn, timeout=5)
        try:
            await kept.fetchval("SELECT 1")
        except BaseException:
            broken, kept = kept, None
            broken.terminate()
            raise

    return check


def default_health_checks(settings: ServiceSettings) -> dict[str, HealthCheck]:
    """The checks a service gets unless it passes its own: its database when it has one."""
    if isinstance(settings, PostgresSettings):
        return {"postgres": postgres_check(settings.postgres_dsn)}
    return {}


def serve_metrics_and_health(port: int, host: str, health: Health) -> Any:
    """Serve `/healthz` (JSON from `health`) and Prometheus metrics on every other path, on host:port
    (a daemon thread). Returns the HTTP server (its `server_address` has the bound port)."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from prometheus_client import make_wsgi_app

    metrics = make_wsgi_app()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            code, body = health.report()
            reason = "OK" if code == 200 else "Service Unavailable"
            start_response(f"{code} {reason}", [("Content-Type", "application/json")])
            return [body]
        return metrics(environ, start_response)  # type: ignore[no-any-return]

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = make_server(host, port, app, Server, handler_class=QuietHandler)
    threading.Thread(target=server.serve_forever, name="cairn-metrics", daemon=True).start()
    return server


async def _the_message(message: StreamMessage[Any]) -> StreamMessage[Any]:
    """The decoder: hands the handler the consumed message itself (the raw records of the batch and
    the consumer), untouched."""
    return message


async def serve(
    router: EventRouter[D],
    settings: S,
    deps_factory: DepsFactory[S, D],
    *,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
    configure: bool = True,
    health_checks: Mapping[str, HealthCheck] | None = None,
) -> None:
    """Consume the router's topics until `stop` is set; commit each record after it is dispatched.

    With `metrics_port` set, `/metrics` and `/healthz` are served there; `/healthz` probes
    `health_checks` (default: the service's database, when it has one) every two seconds.
    """
    stop = stop or asyncio.Event()
    health = Health(default_health_checks(settings) if health_checks is None else health_checks)
    http_server: Any = None
    if configure:
        configure_logging(settings.service_name, settings.log_level, settings.log_format)
        configure_tracing(
            settings.service_name, settings.otel_traces_exporter, settings.otel_exporter_otlp_endpoint
        )
        if settings.metrics_port:
            http_server = serve_metrics_and_health(settings.metrics_port, settings.metrics_host, health)
    # probing costs a database connection a round: only when /healthz is served
    prober = asyncio.create_task(health.run(), name="cairn-health") if http_server is not None else None
    try:
        await _serve(router, settings, deps_factory, stop, ready)
    finally:
        if prober is not None:
            prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await prober
        if http_server is not None:
            http_server.shutdown()
            http_server.server_close()


@asynccontextmanager
async def service_publisher(
    router: EventRouter[Any], settings: ServiceSettings
) -> AsyncIterator[KafkaPublisher]:
    """Every topic ensured, then the service's Kafka publisher (source `/cairn/<service>`, allowed only
    the router's published types), its producer stopped when the block exits."""
    await ensure_topics(
        settings.kafka_bootstrap, replication_factor=settings.kafka_replication_factor, settings=settings
    )
    producer = make_producer(settings)
    await start_client(producer.start, settings.kafka_bootstrap, settings)
    try:
        yield KafkaPublisher(
            producer,
            f"/cairn/{settings.service_name}",
            allowed_types=router.published_types,
            service=settings.service_name,
        )
    finally:
        await producer.stop()


async def _serve(
    router: EventRouter[D],
    settings: S,
    deps_factory: DepsFactory[S, D],
    stop: asyncio.Event,
    ready: asyncio.Event | None,
) -> None:
    async with service_publisher(router, settings) as publisher, deps_factory(settings, publisher) as deps:
        dispatcher = Dispatcher(
            router,
            deps,
            publisher,
            group_id=settings.group_id,
            max_attempts=settings.consumer_max_attempts,
            retry_backoff_s=settings.consumer_retry_backoff_ms / 1000,
        )
        # per-message logs at DEBUG; errors still reach the log
        # no dependency injection: the one handler below takes the message as its decoder gives
        # it (resolving an annotated `KafkaMessage` ran a sync context lookup through a worker
        # thread for every batch, ~10 % of the audit service's CPU)
        broker = KafkaBroker(
            settings.kafka_bootstrap,
            client_id=f"cairn-{settings.service_name}",
            security=broker_security(settings),
            log_level=logging.DEBUG,
            apply_types=False,
        )
        subscriber = broker.subscriber(
            *router.topics,
            group_id=settings.group_id,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            auto_offset_reset=settings.kafka_auto_offset_reset,
            session_timeout_ms=settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
            fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
            # hand the records to the dispatcher untouched: faststream's own decoder would try
            # to parse `application/json` bodies and, on invalid JSON, nack the record forever
            decoder=_the_message,
            # records come in batches, are dispatched in order, and the batch is committed
            # once; a transient failure rewinds every partition of the batch (redelivered
            # records are recognised by the idempotent handlers)
            batch=True,
            max_records=settings.consumer_batch_max_records,
            batch_timeout_ms=settings.consumer_batch_timeout_ms,
        )

        wake_on_records(
            subscriber,
            FetchPacer(
                settings.kafka_fetch_max_wait_ms,
                settings.kafka_fetch_max_wait_idle_ms,
                settings.kafka_fetch_idle_after_ms / 1000,
            ),
            linger_s=settings.consumer_linger_ms / 1000,
        )
        lag = ThrottledLag(
            ConsumerLagRecorder(settings.service_name, settings.group_id),
            settings.consumer_lag_interval_ms / 1000,
        )

        @subscriber
        async def on_batch(msg: KafkaMessage) -> None:
            try:
                await dispatch_batch(dispatcher, msg.raw_message, settings.consumer_concurrency)
            finally:
                await lag.after_batch(msg.consumer)

        await broker.start()
        log.info("service ready", topics=router.topics, group=settings.group_id)
        if ready is not None:
            ready.set()
        try:
            await stop.wait()
        finally:
            log.info("service stopping")
            await lag.close()
            await broker.stop()


async def _record_lag(recorder: ConsumerLagRecorder, consumer: Any) -> None:
    """Update the lag gauge; a metrics failure never fails the batch."""
    if not hasattr(consumer, "assignment"):  # faststream's FakeConsumer in tests
        return
    try:
        await recorder.record(consumer)
    except Exception as exc:
        log.warning("consumer lag not recorded", error=repr(exc))


async def dispatch_batch(dispatcher: Dispatcher[Any], records: Sequence[Any], concurrency: int) -> None:
    """Dispatch a batch: records of one key in order, up to `concurrency` keys at a time, then the
    router's after-batch hook (always, so buffered work of the records handled is not held back).

    With concurrency 1 everything runs in order. The first failure is raised once every key has
    finished, so the caller rewinds the whole batch (handlers are idempotent).
    """
    try:
        await _dispatch_records(dispatcher, records, concurrency)
    except Exception:
        dispatcher.batch_failed()
        raise
    finally:
        await dispatcher.end_batch()


async def _dispatch_records(dispatcher: Dispatcher[Any], records: Sequence[Any], concurrency: int) -> None:
    if concurrency <= 1:
        for record in records:
            await dispatcher.dispatch(record_from_kafka(record))
        return
    lanes: dict[tuple[str, int, bytes | None], list[Any]] = {}
    for record in records:
        lanes.setdefault((record.topic, record.partition, record.key), []).append(record)
    gate = asyncio.Semaphore(concurrency)

    async def run_lane(lane: list[Any]) -> None:
        async with gate:
            for record in lane:
                await dispatcher.dispatch(record_from_kafka(record))

    results = await asyncio.gather(*(run_lane(lane) for lane in lanes.values()), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def run_service(router: EventRouter[D], settings: S, deps_factory: DepsFactory[S, D] | None) -> None:
    """Run `serve` until SIGTERM or SIGINT (the entry point of `python -m cairn_<service>`).

    A service whose router consumes nothing (not built yet) says so and exits.
    """
    if not router.topics or deps_factory is None:
        configure_logging(settings.service_name, settings.log_level, settings.log_format)
        log.warning("service has no event handlers yet; nothing to consume", service=router.service)
        return

    async def main() -> None:
        assert deps_factory is not None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(router, settings, deps_factory, stop=stop)

    asyncio.run(main())
