"""The job runner: claims queued jobs, trains each in a worker thread, records and announces the outcome.

One job at a time per process; several processes share the queue (`FOR UPDATE SKIP LOCKED`). A running
job's heartbeat is renewed every `heartbeat_s`; a job whose heartbeat is older than `job_lease_s` lost its
worker and is re-queued (or failed after `max_attempts`), so no job stays `running` forever. Events the
runner publishes have no cause: their ids are fixed by job, attempt and step, so a repeat is one event.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from cairn_bus import derive_event_id
from cairn_events import TuningProgressedV1
from cairn_observability import get_logger
from cairn_tuner.deps import Deps
from cairn_tuner.domain.continual import ProductionVersion, plan_start
from cairn_tuner.domain.jobs import (
    Job,
    JobState,
    Registration,
    StepReport,
    TrainedAdapter,
    TrainingError,
    TrainingInterrupted,
)
from cairn_tuner.progress import ThrottledProgress
from cairn_tuner.registration import register_adapter

log = get_logger("cairn.tuner")


def progress_event_id(job: Job, label: str, *, per_attempt: bool = True) -> str:
    """Id of a progress event: per attempt and `label` (e.g. `running:12`), or per job for final states."""
    key = f"{job.job_id}#{job.attempt}" if per_attempt else job.job_id
    return derive_event_id(key, TuningProgressedV1.event_type, label)


class _Attempt:
    """What the event loop and the training thread share about one running attempt."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.latest: StepReport | None = None
        self.cancelled = threading.Event()
        self.lost = threading.Event()
        self.stopping = threading.Event()

    def should_stop(self) -> bool:
        return self.cancelled.is_set() or self.lost.is_set() or self.stopping.is_set()


class JobRunner:
    """Runs queued jobs until stopped (`start`/`stop`, or `run_next` one at a time in tests)."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.settings = deps.settings
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._current: _Attempt | None = None

    def start(self) -> None:
        """Run in a background task."""
        self._task = asyncio.create_task(self.run(), name="cairn-tuner-runner")

    async def stop(self, timeout_s: float = 60.0) -> None:
        """Stop: a job in training is interrupted at its next step and put back in the queue."""
        self._stop.set()
        self.deps.wakeup.set()
        if self._current is not None:
            self._current.stopping.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
        except TimeoutError:
            log.warning("job runner did not stop in time; cancelling it")
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self) -> None:
        """Run queued jobs and wait for work, while a watcher checks leases (also during a long job);
        never raises (failures are logged)."""
        watcher = asyncio.create_task(self._watch_leases(), name="cairn-tuner-leases")
        try:
            while not self._stop.is_set():
                self.deps.wakeup.clear()
                ran = False
                try:
                    ran = await self.run_next()
                except Exception as exc:
                    log.error("job runner error", error=repr(exc))
                if not ran:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.deps.wakeup.wait(), self.settings.poll_interval_s)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _watch_leases(self) -> None:
        """Expire lost leases now and every half lease (at most 30 s), until the runner stops."""
        every = max(1.0, min(self.settings.job_lease_s / 2, 30.0))
        while not self._stop.is_set():
            try:
                if await self.expire_leases():
                    self.deps.wakeup.set()  # a re-queued job may be waiting
            except Exception as exc:
                log.error("lease check failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), every)

    async def expire_leases(self) -> list[Job]:
        """Re-queue (or fail) the jobs whose worker stopped renewing their heartbeat; announce each."""
        changed = await self.deps.repo.expire_leases(
            self.deps.clock(), self.settings.job_lease_s, self.settings.max_attempts
        )
        for job in changed:
            if job.state is JobState.CANCELLED:
                log.warning("job cancelled: worker lost after the cancel", job_id=job.job_id)
                event_id = progress_event_id(job, job.state.value, per_attempt=False)
                await self._publish(job, job.state, event_id, message=job.message)
            elif job.state is JobState.QUEUED:
                log.warning("job re-queued: worker lost", job_id=job.job_id, attempt=job.attempt)
                message = f"re-queued: worker lost heartbeat on attempt {job.attempt} of {self.settings.max_attempts}"
                await self._publish(job, job.state, progress_event_id(job, "requeued"), message=message)
            else:
                log.warning("job failed: worker lost", job_id=job.job_id, attempt=job.attempt)
                event_id = progress_event_id(job, job.state.value, per_attempt=False)
                await self._publish(job, job.state, event_id, message=job.message)
        return changed

    async def run_next(self) -> bool:
        """Claim and run the oldest queued job; False when none is queued."""
        job = await self.deps.repo.claim_next(self.deps.clock())
        if job is None:
            return False
        await self.run_job(job)
        return True

    async def run_job(self, job: Job) -> None:
        """Train a claimed job and record its outcome."""
        log.info("job started", job_id=job.job_id, attempt=job.attempt)
        attempt = _Attempt(job)
        if job.cancel_requested:
            await self._end(attempt, JobState.CANCELLED, "cancelled before it started")
            return
        start = plan_start(job, self.settings.model_name, await self._production(job))
        log.info("job starts", job_id=job.job_id, start_from=start.start_from, note=start.note)
        await self._publish(
            job, JobState.RUNNING, progress_event_id(job, "running:0"), step=0, message=start.note
        )
        self._current = attempt
        if self._stop.is_set():
            attempt.stopping.set()
        progress = ThrottledProgress(lambda r: self._step(attempt, r), self.settings.progress_interval_s)

        def on_step(report: StepReport) -> None:
            attempt.latest = report
            progress.report(report)

        keep_alive = asyncio.create_task(self._keep_alive(attempt))
        adapter: TrainedAdapter | None = None
        error: str | None = None
        try:
            adapter = await asyncio.to_thread(
                self.deps.trainer.train, job, on_step, attempt.should_stop, start
            )
        except TrainingInterrupted:
            pass
        except TrainingError as exc:
            error = str(exc)
        except Exception as exc:
            log.exception("training failed", job_id=job.job_id)
            error = f"training failed: {exc!r}"
        finally:
            self._current = None
            keep_alive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keep_alive
            await progress.close()
        await self._conclude(attempt, adapter, error)

    async def _production(self, job: Job) -> ProductionVersion | None:
        """The production version of the tuner's model, when the job asks to start from it."""
        if job.config.start_from != "production":
            return None
        return await self.deps.repo.production(self.settings.model_name)

    async def _conclude(self, attempt: _Attempt, adapter: TrainedAdapter | None, error: str | None) -> None:
        job = attempt.job
        if attempt.lost.is_set():
            log.warning("job lost its lease while training; leaving it to the queue", job_id=job.job_id)
        elif error is not None:
            await self._end(attempt, JobState.FAILED, error)
        elif adapter is not None:
            registration = await register_adapter(
                self.deps.repo, self.deps.publisher, self.settings.model_name, job, adapter, self.deps.clock()
            )
            message = f"registered {registration.model_name}:{registration.version}"
            await self._end(attempt, JobState.SUCCEEDED, message, adapter=adapter, registration=registration)
        elif attempt.cancelled.is_set():
            step = attempt.latest.step if attempt.latest else 0
            await self._end(attempt, JobState.CANCELLED, f"cancelled after step {step}")
        else:  # interrupted by shutdown: someone else runs it
            released = await self.deps.repo.release(job.job_id, job.attempt, self.deps.clock())
            if released is not None:
                event_id = progress_event_id(job, "released")
                await self._publish(
                    released, JobState.QUEUED, event_id, message="re-queued: tuner shutting down"
                )

    async def _end(
        self,
        attempt: _Attempt,
        state: JobState,
        message: str,
        *,
        adapter: TrainedAdapter | None = None,
        registration: Registration | None = None,
    ) -> None:
        """Announce a final state (a fixed id per job and state), then record it."""
        job = attempt.job
        event_id = progress_event_id(job, state.value, per_attempt=False)
        await self._publish(job, state, event_id, message=message, report=attempt.latest)
        done = await self.deps.repo.finish(
            job.job_id,
            job.attempt,
            state,
            self.deps.clock(),
            message=message,
            adapter=adapter,
            registration=registration,
        )
        log.info(
            "job finished", job_id=job.job_id, state=state.value, message=message, recorded=done is not None
        )

    async def _keep_alive(self, attempt: _Attempt) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_s)
            await self._beat(attempt)

    async def _beat(self, attempt: _Attempt) -> None:
        """Renew the lease with the latest progress; learn whether the job was cancelled or lost."""
        job, latest = attempt.job, attempt.latest
        try:
            found = await self.deps.repo.heartbeat(
                job.job_id,
                job.attempt,
                self.deps.clock(),
                latest.step if latest else 0,
                latest.total_steps if latest else None,
                latest.loss if latest else None,
            )
        except Exception as exc:  # the lease may still hold; try again at the next beat
            log.warning("heartbeat failed", job_id=job.job_id, error=repr(exc))
            return
        if found is None:
            attempt.lost.set()
        elif found.cancel_requested:
            attempt.cancelled.set()

    async def _step(self, attempt: _Attempt, report: StepReport) -> None:
        event_id = progress_event_id(attempt.job, f"running:{report.step}")
        await self._publish(attempt.job, JobState.RUNNING, event_id, report=report)
        await self._beat(attempt)

    async def _publish(
        self,
        job: Job,
        state: JobState,
        event_id: str,
        *,
        step: int | None = None,
        report: StepReport | None = None,
        message: str | None = None,
    ) -> None:
        event = TuningProgressedV1(
            job_id=job.job_id,
            state=state.value,
            step=report.step if report else (step if step is not None else job.step),
            total_steps=report.total_steps if report else job.total_steps,
            loss=report.loss if report else job.loss,
            message=message,
            progressed_at=self.deps.clock(),
        )
        await self.deps.publisher.publish(event, event_id=event_id)
