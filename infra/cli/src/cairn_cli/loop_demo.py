"""`cairn loop demo`: the closed loop end to end on the running local stack and services.

requests → feedback with corrections → dataset version → LoRA tuning job → model version → evaluation
gate → promotion → responses served by the new adapter. Every step is an event on the bus. This command
plays the upstream system only (questions and reviewers' corrections): from the feedback on, the
services' policies take every step (docs/closed-loop.md) — the feedback service builds the dataset
version (`CAIRN_DATASET_POLICY_DIR`), the tuner requests the job (`CAIRN_TUNE_POLICY_DIR`), the
evaluator promotes a candidate that passes its gate to production (`CAIRN_AUTO_PROMOTE_PRODUCTION`);
`cairn services up` sets all three. It then prints the chain from the registry and the audit trail, with
the time of each stage. Exits 1 when a step does not check out.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cairn_bus.kafka import KafkaPublisher, ensure_topics
from cairn_cli.ask import Answer, ask_many, question_request
from cairn_cli.config import CliSettings
from cairn_cli.kafka_io import producer
from cairn_cli.watch import EventWatcher
from cairn_events import (
    DatasetPublishedV1,
    EvaluationCompletedV1,
    Event,
    FeedbackSubmittedV1,
    ModelPromotedV1,
    ModelRegisteredV1,
    ResponseCompletedV1,
    TuningProgressedV1,
    TuningRequestedV1,
)

LIFECYCLE_TOPICS = ["cairn.datasets", "cairn.tuning", "cairn.models", "cairn.evaluations"]


@dataclass
class DemoPlan:
    """What the demo asks, corrects and trains (infra/loop/demo.yaml)."""

    model: str
    base_model: str
    dataset: str
    prompt: str
    top_k: int
    max_tokens: int
    rating: int
    feedback: list[dict[str, str]]
    policy_wait_s: float = 180.0
    """How long to wait for each step a service's policy takes (dataset, job, promotion)."""

    @classmethod
    def load(cls, path: Path) -> DemoPlan:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return cls(**data)


@dataclass
class Stages:
    """Wall time of each stage, for the summary."""

    times: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.times[name] = time.perf_counter() - started


def default_plan_path() -> Path:
    """`infra/loop/demo.yaml` of the repository this command runs in."""
    from cairn_localstack.config import find_repo_root

    return find_repo_root() / "infra" / "loop" / "demo.yaml"


def ask_requests(plan: DemoPlan, questions: list[str], model: str | None = None) -> list[tuple[str, Any]]:
    """One request per question through the plan's prompt (retrieval narrowed to `top_k`)."""
    extra: dict[str, Any] = {"retrieval": {"top_k": plan.top_k}}
    if model is not None:
        extra["model"] = model
    return [(q, question_request(q, plan.prompt, max_tokens=plan.max_tokens, **extra)) for q in questions]


def feedback_events(plan: DemoPlan, answers: list[Answer], run: str) -> list[FeedbackSubmittedV1]:
    """A correction (with a low rating) for every answered question."""
    corrections = {item["question"]: item["correction"] for item in plan.feedback}
    now = datetime.now(UTC).isoformat()
    events = []
    for i, answer in enumerate(answers):
        if answer.response is None or answer.response.status.value != "completed":
            continue
        events.append(
            FeedbackSubmittedV1.model_validate(
                {
                    "feedback_id": f"fb-{run}-{i}",
                    "request_id": answer.request_id,
                    "tenant": "default",
                    "rating": plan.rating,
                    "thumbs": "down",
                    "comment": "too long; answer directly",
                    "corrected_answer": corrections[answer.question],
                    "tags": ["loop-demo", "verbose"],
                    "user_id": "loop-demo-reviewer",
                    "submitted_at": now,
                }
            )
        )
    return events


def served_by(response: ResponseCompletedV1 | None) -> str:
    """`model v<version> (adapter)` of a response."""
    if response is None:
        return "no response"
    version = f" v{response.model_version}" if response.model_version else ""
    adapter = f" adapter {response.adapter}" if response.adapter else " no adapter"
    return f"{response.model}{version}{adapter}"


def progress_printer(progress: Progress, task: Any) -> Any:
    """An on_event callback that moves the tuning progress bar."""

    def on_event(event: Event) -> None:
        if isinstance(event, TuningProgressedV1):
            loss = f"loss {event.loss:.3f}" if event.loss is not None else ""
            progress.update(
                task,
                completed=event.step,
                total=event.total_steps or None,
                description=f"tuning {event.state} {loss}",
            )

    return on_event


async def publish_all(settings: CliSettings, events: list[Event]) -> None:
    """Publish events as the operator / upstream system (`/cairn/cli`)."""
    async with producer(settings.kafka_bootstrap) as p:
        publisher = KafkaPublisher(p, "/cairn/cli", service="cli")
        for event in events:
            await publisher.publish(event)


def print_stage_times(console: Console, stages: Stages) -> None:
    table = Table(title="time per stage", show_edge=False)
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for name, seconds in stages.times.items():
        table.add_row(name, f"{seconds:.1f}")
    table.add_row("[bold]total[/bold]", f"[bold]{sum(stages.times.values()):.1f}[/bold]")
    console.print(table)


def new_run_id() -> str:
    return uuid.uuid4().hex[:6]


async def wait_tuning(
    watcher: EventWatcher, job_id: str, console: Console, timeout: float
) -> tuple[TuningProgressedV1, ModelRegisteredV1 | None]:
    """Follow a job's progress with a bar; returns its final state and, on success, the registration."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("tuning queued", total=None)
        final = await watcher.wait_for(
            TuningProgressedV1,
            lambda e: e.job_id == job_id and e.state in {"succeeded", "failed", "cancelled"},
            timeout,
            on_event=progress_printer(progress, task),
        )
    if final.state != "succeeded":
        return final, None
    registered = await watcher.wait_for(ModelRegisteredV1, lambda e: e.job_id == job_id, 60)
    return final, registered


async def wait_evaluation(
    watcher: EventWatcher, model: str, version: int, timeout: float
) -> EvaluationCompletedV1:
    return await watcher.wait_for(
        EvaluationCompletedV1,
        lambda e: e.model_name == model and e.candidate_version == version,
        timeout,
    )


async def wait_promotion(
    watcher: EventWatcher, model: str, version: int, stage: str, timeout: float
) -> ModelPromotedV1:
    return await watcher.wait_for(
        ModelPromotedV1,
        lambda e: e.model_name == model and e.version == version and e.to_stage.value == stage,
        timeout,
    )


E = TypeVar("E", bound=Event)


async def wait_policy(
    watcher: EventWatcher, kind: type[E], match: Callable[[E], bool], timeout: float, missing: str
) -> E:
    """The event a service's policy publishes for this run; DemoError saying what to check when none comes."""
    try:
        return await watcher.wait_for(kind, match, timeout)
    except TimeoutError as exc:
        raise DemoError(f"{missing} (waited {timeout:.0f} s)") from exc


async def ensure_lifecycle_topics(settings: CliSettings) -> None:
    await ensure_topics(settings.kafka_bootstrap)


CAIRN = str(Path(sys.executable).with_name("cairn"))
SERVE_WAIT_S = 300.0
"""How long the demo asks again until inference serves the promoted version."""


def cairn(console: Console, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a sibling `cairn` command (the operator's step), echoing it; raises DemoError on failure."""
    console.print(f"[dim]$ cairn {' '.join(args)}[/dim]")
    done = subprocess.run([CAIRN, *args], capture_output=True, text=True, timeout=900, check=False)
    if done.stdout.strip():
        console.print(done.stdout.rstrip())
    if check and done.returncode != 0:
        raise DemoError(f"cairn {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    return done


def promote_to_production(console: Console, model: str, version: int, reason: str) -> None:
    """`cairn models promote MODEL VERSION --to production --reason REASON` (the operator's step)."""
    cairn(console, "models", "promote", model, str(version), "--to", "production", "--reason", reason)


class DemoError(RuntimeError):
    """A step of the loop did not check out."""


async def ensure_production_base(console: Console, watcher: EventWatcher, plan: DemoPlan) -> int:
    """Version 1 of the model = the base model, in production; registered and promoted if it is not yet."""
    shown = cairn(console, "models", "show", plan.model, check=False)
    if shown.returncode == 0 and "production" in shown.stdout:
        console.print(f"{plan.model} already has a production version")
        return 0
    cairn(console, "tune", "register-base", plan.model, "--base-model", plan.base_model)
    registered = await watcher.wait_for(
        ModelRegisteredV1, lambda e: e.model_name == plan.model and e.adapter_uri is None, 60
    )
    await wait_registry(console, plan.model, registered.version)
    promote_to_production(
        console, plan.model, registered.version, "baseline: the base model before any tuning"
    )
    await wait_promotion(watcher, plan.model, registered.version, "production", 60)
    return registered.version


async def wait_registry(console: Console, model: str, version: int, timeout: float = 180) -> None:
    """Until the evaluator has recorded the version it consumed from `cairn.models` (the registry)."""
    deadline = time.monotonic() + timeout
    while True:
        done = await asyncio.to_thread(
            subprocess.run,
            [CAIRN, "models", "show", model, str(version)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise DemoError(
                f"the registry has no {model}:{version} after {timeout:.0f} s: {done.stdout.strip()}"
            )
        await asyncio.sleep(1)


async def run_loop_demo(settings: CliSettings, console: Console, plan: DemoPlan) -> int:
    """The whole loop; returns the exit code (0 when every step checked out)."""
    run = new_run_id()
    stages = Stages()
    await ensure_lifecycle_topics(settings)
    async with EventWatcher(settings.kafka_bootstrap, LIFECYCLE_TOPICS) as watcher:
        try:
            with stages.timed("registry baseline"):
                console.rule("1. the registry: base model in production")
                await ensure_production_base(console, watcher, plan)
            with stages.timed("requests"):
                console.rule(f"2. {len(plan.feedback)} requests through the platform (production model)")
                answers = await ask_many(
                    settings, ask_requests(plan, [f["question"] for f in plan.feedback]), 900
                )
                done = [
                    a for a in answers if a.response is not None and a.response.status.value == "completed"
                ]
                console.print(
                    f"{len(done)}/{len(answers)} answered; served by {served_by(done[0].response if done else None)}"
                )
                statuses = Counter(a.response.status.value if a.response else "no response" for a in answers)
                console.print("statuses: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
                for a in answers[:2]:
                    text = a.response.text if a.response and a.response.text else "(none)"
                    if a.response is not None and a.response.reason:
                        text += f" [{a.response.status.value}: {a.response.reason}]"
                    console.print(f"  Q: {a.question}\n  A: {text.strip()[:200]}")
                if len(done) < 8:
                    raise DemoError("too few answered requests to learn from")
            with stages.timed("feedback"):
                console.rule("3. reviewers correct the answers (feedback.submitted)")
                feedback = feedback_events(plan, done, run)
                await publish_all(settings, list(feedback))
                console.print(f"{len(feedback)} corrections submitted, e.g.: {feedback[0].corrected_answer}")
            with stages.timed("dataset"):
                console.rule("4. a curated dataset version, built by the feedback service's dataset policy")
                dataset = await wait_policy(
                    watcher,
                    DatasetPublishedV1,
                    lambda e: e.dataset_id == plan.dataset,
                    plan.policy_wait_s,
                    f"no version of dataset {plan.dataset} was published: does the feedback service run with "
                    f"a policy for it (CAIRN_DATASET_POLICY_DIR, e.g. infra/datasets/{plan.dataset}.yaml)?",
                )
                console.print(
                    f"{dataset.dataset_id} v{dataset.version}: {dataset.train_rows} train / "
                    f"{dataset.heldout_rows} held out, from {dataset.source_request_count} requests "
                    f"({dataset.manifest_uri})"
                )
            with stages.timed("tuning"):
                console.rule(
                    "5. LoRA fine-tuning, requested by the tuner's policy (tuner → model.registered)"
                )
                job = await wait_policy(
                    watcher,
                    TuningRequestedV1,
                    lambda e: e.dataset_id == dataset.dataset_id and e.dataset_version == dataset.version,
                    60,
                    f"the tuner requested no job for {dataset.dataset_id} v{dataset.version}: does it run with a "
                    f"tuning policy for it (CAIRN_TUNE_POLICY_DIR, e.g. infra/tuning/{plan.dataset}.yaml) whose "
                    f"min_rows is at most {dataset.train_rows}?",
                )
                console.print(
                    f"job {job.job_id} by {job.requested_by}: {job.config.model_dump(exclude_none=True)}"
                )
                final, registered = await wait_tuning(watcher, job.job_id, console, 1800)
                if registered is None:
                    raise DemoError(f"tuning {final.state}: {final.message}")
                console.print(
                    f"registered {registered.model_name} v{registered.version} adapter {registered.adapter_uri} "
                    f"metrics {', '.join(f'{k}={v:.3f}' for k, v in registered.metrics.items())}"
                )
            with stages.timed("evaluation"):
                console.rule(f"6. evaluation gate: v{registered.version} against production")
                evaluation = await wait_evaluation(watcher, plan.model, registered.version, 1800)
                cairn(console, "eval", "report", evaluation.run_id, check=False)
                if not evaluation.passed:
                    console.print(
                        "[yellow]the gate did not pass: the candidate stays out of production[/yellow]"
                    )
                    print_stage_times(console, stages)
                    return 1
                await wait_promotion(watcher, plan.model, registered.version, "staging", 60)
            with stages.timed("promotion"):
                console.rule(
                    "7. promotion to production by the evaluator's policy (model.promoted → inference)"
                )
                promoted = await wait_policy(
                    watcher,
                    ModelPromotedV1,
                    lambda e: (
                        e.model_name == plan.model
                        and e.version == registered.version
                        and e.to_stage.value == "production"
                    ),
                    plan.policy_wait_s,
                    f"{plan.model} v{registered.version} passed its gate but was not promoted to production: "
                    "does the evaluator run with CAIRN_AUTO_PROMOTE_PRODUCTION=true? (or promote it: cairn "
                    f"models promote {plan.model} {registered.version} --to production --reason ...)",
                )
                console.print(f"promoted to production by {promoted.promoted_by}: {promoted.reason}")
            with stages.timed("serving"):
                console.rule("8. responses served by the new adapter")
                served = await serve_with(settings, console, plan, registered.version)
        except (DemoError, TimeoutError) as exc:
            console.print(f"[red]loop demo failed: {exc}[/red]")
            print_stage_times(console, stages)
            return 1
    console.rule("the chain")
    print_chain(console, answers, feedback, dataset, job, registered, evaluation, served)
    cairn(console, "models", "history", plan.model, check=False)
    print_stage_times(console, stages)
    return 0


async def serve_with(settings: CliSettings, console: Console, plan: DemoPlan, version: int) -> list[Answer]:
    """Ask again (model unset = production) until the answers name the new version. Inference follows
    `cairn.models` between the requests it is answering, so on a busy machine this can take minutes."""
    questions = [f["question"] for f in plan.feedback[:2]]
    deadline = time.monotonic() + SERVE_WAIT_S
    while True:
        answers = await ask_many(settings, ask_requests(plan, questions), 300)
        if all(a.response is not None and a.response.model_version == str(version) for a in answers):
            break
        if time.monotonic() > deadline:
            raise DemoError(f"responses still served by {served_by(answers[0].response)}")
        await asyncio.sleep(2)
    for a in answers:
        text = a.response.text if a.response and a.response.text else "(none)"
        console.print(f"  Q: {a.question}\n  A: {text.strip()[:200]}\n  served by {served_by(a.response)}")
    return answers


def print_chain(
    console: Console,
    answers: list[Answer],
    feedback: list[FeedbackSubmittedV1],
    dataset: DatasetPublishedV1,
    job: TuningRequestedV1,
    registered: ModelRegisteredV1,
    evaluation: EvaluationCompletedV1,
    served: list[Answer],
) -> None:
    table = Table(show_edge=False)
    table.add_column("step")
    table.add_column("what")
    table.add_row("requests", f"{len(answers)} e.g. {answers[0].request_id} … {answers[-1].request_id}")
    table.add_row("feedback", f"{len(feedback)} corrections e.g. {feedback[0].feedback_id}")
    table.add_row(
        "dataset",
        f"{dataset.dataset_id} v{dataset.version}: {dataset.train_rows} train / {dataset.heldout_rows} held out "
        f"from {dataset.source_request_count} requests ({dataset.manifest_uri})",
    )
    table.add_row("tuning job", f"{job.job_id} on {job.base_model}, seed {job.config.seed}")
    table.add_row(
        "model version", f"{registered.model_name} v{registered.version} ({registered.adapter_uri})"
    )
    scores = ", ".join(
        f"{s.suite}/{s.metric} {s.candidate:.2f} vs {s.baseline if s.baseline is None else round(s.baseline, 2)}"
        for s in evaluation.suites
    )
    table.add_row(
        "evaluation", f"run {evaluation.run_id}: {'passed' if evaluation.passed else 'failed'} ({scores})"
    )
    table.add_row("served", f"{served[0].request_id}: {served_by(served[0].response)}")
    console.print(table)
    console.print(
        f"[dim]provenance: cairn datasets provenance {dataset.dataset_id} --version {dataset.version}; "
        f"trail: cairn trail {served[0].request_id}[/dim]"
    )


__all__ = [
    "LIFECYCLE_TOPICS",
    "DemoPlan",
    "Stages",
    "ask_many",
    "ask_requests",
    "default_plan_path",
    "ensure_lifecycle_topics",
    "feedback_events",
    "print_stage_times",
    "publish_all",
    "run_loop_demo",
    "served_by",
    "wait_evaluation",
    "wait_policy",
    "wait_promotion",
    "wait_tuning",
]
