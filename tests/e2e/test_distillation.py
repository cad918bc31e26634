"""Distillation end to end, on the tiny chat model: a teacher version's answers (live, and from a replay
through it) become a dataset's targets (`cairn datasets build --rule teacher:cairn-qa:2`), a student
is tuned on them, and `cairn eval compare` scores student, teacher and base on the same suites. Then
the teacher goes to production and a continual job (`--from production`) continues its adapter.

Everything goes through topics and the CLIs: upstream sends requests and feedback, the services
answer, store, train and evaluate as processes. The models are the tiny chat model (it answers
nonsense, fast): what is checked is the plumbing and the selection, not the quality of the answers.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml

from cairn_events import FeedbackSubmittedV1, RequestSubmittedV1, ResponseCompletedV1, ResponseStatus
from cairn_events.artifacts import DatasetRow
from cairn_testing.processes import ServiceProcesses, run_cairn
from cairn_testing.tiny import TINY_MODEL_NAME, build_tiny_model

from .harness import REPO, Upstream, new_request_id

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

MODELS = REPO / ".cairn" / "test" / "distillation-models"
E2E_SERVICES = ["audit", "prompt-store", "retriever", "safety", "inference", "feedback", "tuner", "evaluator"]
SUITES = MODELS / "suites"
MODEL = f"distil-qa-{uuid.uuid4().hex[:6]}"
"""The registry model of this run: other modules on the shared broker register their own `cairn-qa`
versions (of another base model), which inference's registry view, read from all of cairn.models,
would otherwise mix with this run's."""
E2E_SERVICE_ENV = {
    "inference": {
        "CAIRN_MODEL_NAME": TINY_MODEL_NAME,
        "CAIRN_MODEL_DIR": str(MODELS / TINY_MODEL_NAME),
        "CAIRN_SERVED_MODEL": MODEL,
    },
    "tuner": {"CAIRN_MODELS_DIR": str(MODELS), "CAIRN_TUNER_MODEL_NAME": MODEL},
    "evaluator": {"CAIRN_HELDOUT_MAX_CASES": "4", "CAIRN_SUITES_DIR": str(SUITES)},
}
PROMPT = "distil"
PROMPT_YAML = """\
name: distil
description: Short answers to Python questions, no retrieval (the tiny model's context is 1024 tokens).
variables:
  - name: question
    description: The user's question.
    required: true
    max_length: 4000
  - name: topic
    description: Unused; the suites' cases name it.
    required: false
    max_length: 200
messages:
  - role: system
    content: Answer the Python question in one sentence.
  - role: user
    content: "{{ question }}"
params:
  max_tokens: 16
  temperature: 0.0
"""
BASE, TEACHER, STUDENT = f"{MODEL}:1", f"{MODEL}:2", f"{MODEL}:3"
TENANT = "e2e-distil"
REPLAY_TENANT = "e2e-distil-replay"
QUESTIONS = [
    "What does the pass statement do?",
    "What does the assert statement do?",
    "What does the global statement declare?",
    "What does the del statement do?",
    "What does a with statement do?",
    "What does the try statement do?",
]
TUNE = ["--base-model", TINY_MODEL_NAME, "--max-steps", "4", "--batch-size", "2", "--lr", "0.001"]


@pytest.fixture(scope="module", autouse=True)
def tiny_models(e2e_suites: Path) -> Path:
    """The tiny chat model where inference and the tuner look for it (deterministic; built once), and
    the e2e suites asked with the `distil` prompt (no retrieved passages, which the tiny model's
    context cannot hold)."""
    if not (MODELS / TINY_MODEL_NAME / "config.json").is_file():
        build_tiny_model(MODELS / TINY_MODEL_NAME)
    SUITES.mkdir(parents=True, exist_ok=True)
    for path in sorted(e2e_suites.glob("*.yaml")):
        suite = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in suite["cases"]:
            case["prompt"] = PROMPT
            case.pop("retrieval", None)
        (SUITES / path.name).write_text(yaml.safe_dump(suite, sort_keys=False), encoding="utf-8")
    (MODELS / "distil.yaml").write_text(PROMPT_YAML, encoding="utf-8")
    return MODELS


def ask(question: str, model: str, tenant: str = TENANT, **fields: Any) -> RequestSubmittedV1:
    return RequestSubmittedV1.model_validate(
        {
            "request_id": new_request_id("distil"),
            "tenant": tenant,
            "prompt": PROMPT,
            "variables": {"question": question},
            "params": {"max_tokens": 16, "temperature": 0.0},
            "model": model,
            "submitted_at": datetime.now(UTC).isoformat(),
            **fields,
        }
    )


async def answered(upstream: Upstream, make: Callable[[], RequestSubmittedV1]) -> ResponseCompletedV1:
    """Ask `make()` until inference knows the version it names (it follows cairn.models at its pace)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 90
    while True:
        request = make()
        await upstream.submit(request)
        answer = await upstream.response(request.request_id, settle=0.0)
        waiting = answer.reason is not None and "is not served here" in answer.reason
        if not waiting or loop.time() > deadline:
            return answer
        await asyncio.sleep(1.0)


def cairn(services: ServiceProcesses, *args: str, timeout: float = 300) -> str:
    return run_cairn({**services.env, "COLUMNS": "250"}, *args, cwd=REPO, timeout=timeout)


async def tuned(services: ServiceProcesses, dataset: str) -> str:
    """Tune the tiny base on `dataset` v1 and wait for the job; the registered version (`<MODEL>:N`)."""
    job = f"tune-{uuid.uuid4().hex[:10]}"
    await asyncio.to_thread(
        cairn, services, "tune", "start", "--dataset", dataset, "--version", "1", *TUNE, "--job-id", job
    )
    for _ in range(120):  # the tuner records the job when it consumes the request
        try:
            out = await asyncio.to_thread(
                cairn, services, "tune", "status", job, "--follow", "--interval", "0.5"
            )
        except RuntimeError as exc:
            if "no job" not in str(exc):
                raise
            await asyncio.sleep(1.0)
            continue
        found = re.search(rf"succeeded .*-> ({re.escape(MODEL)}:\d+)", out)
        assert found, out
        return found.group(1)
    raise AssertionError(f"job {job} was never recorded")


async def stored(services: ServiceProcesses, table: str, request_ids: list[str], timeout: float = 60) -> None:
    """Wait until the feedback service stored each request's event in `table` (it consumes at its pace)."""
    conn = await asyncpg.connect(services.env["CAIRN_POSTGRES_DSN"])
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            n = await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE request_id = ANY($1::text[])", request_ids
            )
            if n == len(request_ids):
                return
            assert loop.time() < deadline, f"{table}: {n} of {len(request_ids)} stored"
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


def dataset_rows(services: ServiceProcesses, dataset: str) -> list[DatasetRow]:
    """Every row of the dataset's v1 as the tuner reads them (sealed rows opened with the stack's key)."""
    from cairn_auth.encryption import MasterKey
    from cairn_auth.object_keys import object_store_keyring
    from cairn_bus.objects import S3ObjectStore
    from cairn_feedback.settings import Settings
    from cairn_tuner.adapters.dataset_files import load_splits

    with pytest.MonkeyPatch.context() as env:
        for name, value in services.env.items():
            if name.startswith("CAIRN_"):
                env.setenv(name, value)
        settings = Settings()
        master = MasterKey.configured()
    objects = S3ObjectStore.from_settings(settings)
    keyring = object_store_keyring(objects, settings.s3_bucket, master)
    train, heldout = load_splits(objects, settings.s3_bucket, dataset, 1, keyring)
    return [*train, *heldout]


@dataclass
class Distilled:
    """What the pipeline produced, for the tests to check."""

    teacher: dict[str, ResponseCompletedV1] = field(default_factory=dict)
    """Live answers of the teacher to clean questions, by request id."""
    redacted: str = ""
    blocked: str = ""
    evaluation: str = ""
    by_base: str = ""
    shadow: dict[str, str] = field(default_factory=dict)
    """Replayed request id → the teacher's shadow answer."""
    build: str = ""
    rows: list[DatasetRow] = field(default_factory=list)
    student: str = ""


@pytest.fixture(scope="module")
async def distilled(
    services: ServiceProcesses, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Distilled:
    out = Distilled()
    cairn(services, "prompts", "push", str(MODELS / "distil.yaml"), "--label", "production")
    # 1. the base (version 1) and a teacher (version 2): the base tuned on corrections of its answers
    assert f"registered {BASE}" in cairn(
        services, "tune", "register-base", MODEL, "--base-model", TINY_MODEL_NAME
    )
    corrected = []
    for i, question in enumerate(QUESTIONS[:4]):
        base_answer = await answered(upstream, lambda q=question: ask(q, BASE))
        assert base_answer.status is ResponseStatus.COMPLETED, base_answer.reason
        corrected.append(base_answer.request_id)
        await upstream.submit(
            FeedbackSubmittedV1(
                feedback_id=f"fb-{uuid.uuid4().hex[:8]}-{i}",
                request_id=base_answer.request_id,
                tenant=TENANT,
                corrected_answer=f"The {question.split()[2]} statement: see the language reference.",
                submitted_at=datetime.now(UTC),
            )
        )
    await stored(services, "feedback_records", corrected)  # the feedback service consumes at its pace
    await stored(services, "feedback_screenings", corrected)
    cairn(services, "datasets", "build", "e2e-teacher-data", "--rule", "corrected", "--heldout", "0.25")
    assert await tuned(services, "e2e-teacher-data") == TEACHER

    # 2. the teacher answers live traffic; a redacted input, a blocked one, evaluation traffic and
    # another version's answer are there too
    for question in QUESTIONS:
        answer = await answered(upstream, lambda q=question: ask(q, TEACHER))
        assert answer.status is ResponseStatus.COMPLETED, answer.reason
        assert answer.adapter == TEACHER
        out.teacher[answer.request_id] = answer
    redacted = await answered(
        upstream, lambda: ask("I am jane.doe@example.com. What does yield do?", TEACHER)
    )
    assert (redacted.status, redacted.adapter) == (ResponseStatus.COMPLETED, TEACHER)
    blocked = await answered(upstream, lambda: ask("You stupid idiot, what does pass do, moron?", TEACHER))
    assert blocked.status is ResponseStatus.BLOCKED
    evaluation = await answered(
        upstream, lambda: ask("What does lambda create?", TEACHER, user_id="cairn-evaluator")
    )
    by_base = await answered(upstream, lambda: ask("What does a lambda expression create?", BASE))
    assert evaluation.adapter == TEACHER
    assert by_base.status is ResponseStatus.COMPLETED
    out.redacted, out.blocked, out.evaluation, out.by_base = (
        redacted.request_id,
        blocked.request_id,
        evaluation.request_id,
        by_base.request_id,
    )

    # 3. recorded requests answered by the base, replayed through the teacher (shadow answers)
    start = datetime.now(UTC) - timedelta(seconds=1)
    for question in ("When is the else clause of a try statement run?", "What does the yield expression do?"):
        assert (
            await answered(upstream, lambda q=question: ask(q, BASE, REPLAY_TENANT))
        ).status is ResponseStatus.COMPLETED
    end = datetime.now(UTC) + timedelta(seconds=1)
    report = tmp_path_factory.mktemp("distil") / "replay.json"
    args = [
        "replay",
        "--diff",
        "--from",
        start.isoformat(),
        "--to",
        end.isoformat(),
        "--tenant",
        REPLAY_TENANT,
    ]
    args += ["--model", TEACHER, "--format", "json", "--out", str(report), "--timeout", "120"]
    await asyncio.to_thread(cairn, services, *args)
    diff = json.loads(report.read_text(encoding="utf-8"))
    assert diff["missing"] == []
    out.shadow = {row["shadow_request_id"]: row["new"]["text"] for row in diff["rows"]}
    assert len(out.shadow) == 2

    # 4. the dataset: the teacher's answers as targets, once the feedback service has seen them all
    live = [*out.teacher, out.redacted, out.blocked, out.evaluation, out.by_base]
    await stored(services, "feedback_responses", live)
    await stored(services, "feedback_screenings", [*out.teacher, out.redacted])
    await stored(services, "feedback_shadow_responses", list(out.shadow))
    await stored(services, "feedback_screenings", list(out.shadow))
    out.build = cairn(
        services, "datasets", "build", "e2e-distil", "--rule", f"teacher:{TEACHER}", "--heldout", "0.3"
    )
    out.rows = dataset_rows(services, "e2e-distil")

    # 5. the student: the base tuned on the teacher's answers
    out.student = await tuned(services, "e2e-distil")
    return out


def test_the_rows_are_the_teachers_answers_and_nothing_else(distilled: Distilled) -> None:
    from cairn_feedback.domain.scrub import scrub

    rows = {r.request_id: r for r in distilled.rows}
    expected = {rid: (a.text or "") for rid, a in distilled.teacher.items()} | distilled.shadow
    assert sorted(rows) == sorted(expected), distilled.build
    for rid, text in expected.items():
        assert rows[rid].completion == scrub(text).strip()
        assert (rows[rid].source, rows[rid].model, rows[rid].feedback_id) == ("teacher", TEACHER, None)
    for left_out in (distilled.redacted, distilled.blocked, distilled.evaluation, distilled.by_base):
        assert left_out not in rows
    assert re.search(r"dropped: redacted_input\W+1\b", distilled.build), distilled.build
    # the evaluator's own requests to the teacher (the gate run of its registration) are never taken
    assert re.search(r"dropped: evaluation\W+\d+", distilled.build), distilled.build


def test_a_replayed_answer_through_the_teacher_is_a_target(distilled: Distilled) -> None:
    rows = {r.request_id: r for r in distilled.rows}
    for shadow_id in distilled.shadow:
        assert ":rp-" in shadow_id
        assert rows[shadow_id].source == "teacher"


def test_the_student_is_registered_with_its_dataset_which_names_the_teacher(
    distilled: Distilled, services: ServiceProcesses
) -> None:
    assert distilled.student == STUDENT
    shown = cairn(services, "models", "show", MODEL, "3")
    assert "dataset: e2e-distil v1" in shown, shown
    manifest = json.loads(cairn(services, "datasets", "show", "e2e-distil", "--json"))
    assert manifest["rules"] == [f"teacher:{TEACHER}"]
    assert manifest["feedback_ids"] == []
    provenance = json.loads(cairn(services, "datasets", "provenance", "e2e-distil", "--json"))
    assert {p["source"] for p in provenance} == {"teacher"}


async def test_compare_scores_student_teacher_and_base_on_the_same_suites(
    distilled: Distilled, services: ServiceProcesses, upstream: Upstream
) -> None:
    served = await answered(upstream, lambda: ask("What does pass do?", STUDENT))  # inference knows v3
    assert served.adapter == STUDENT, served.reason
    args = ["eval", "compare", STUDENT, TEACHER, BASE, "--teacher", TEACHER, "--json", "--timeout", "300"]
    printed = await asyncio.to_thread(cairn, services, *args, timeout=400)
    kept = REPO / ".cairn" / "test" / "distillation-compare.json"  # for reading after the run
    kept.write_text(printed, encoding="utf-8")
    report = json.loads(printed)
    assert [v["ref"] for v in report["versions"]] == [STUDENT, TEACHER, BASE]
    suites = {s["suite"] for s in report["suites"]}  # the e2e suites, asked with the `distil` prompt
    assert {"python-scenarios", "adversarial", "heldout", "completeness"} <= suites
    for version in report["versions"]:
        assert version["status"] in {"passed", "failed"}, version
        assert set(version["scores"]) == suites
        assert version["scores"]["completeness"]["answered"] == 1.0
    student, teacher, base = report["versions"]
    assert student["agreement_cases"] >= 1
    assert 0.0 <= student["agreement_with_teacher"] <= 1.0
    assert base["agreement_with_teacher"] is not None
    assert teacher["agreement_with_teacher"] is None


async def production_known_to_the_tuner(
    services: ServiceProcesses, version: int, timeout: float = 60
) -> None:
    """Wait until the tuner has recorded `version` of the module's model as production (from cairn.models)."""
    conn = await asyncpg.connect(services.env["CAIRN_POSTGRES_DSN"])
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            stage = await conn.fetchval(
                "SELECT stage FROM tuner_model_stages WHERE model_name = $1 AND version = $2", MODEL, version
            )
            if stage == "production":
                return
            assert loop.time() < deadline, f"the tuner has {MODEL}:{version} as {stage!r}, not production"
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


def shown_dicts(shown: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `config:` and `metrics:` of `cairn models show MODEL VERSION`."""
    import ast

    found = {}
    for line in shown.splitlines():
        key, _, value = line.strip().partition(": ")
        if key in ("config", "metrics"):
            found[key] = ast.literal_eval(value)
    return found["config"], found["metrics"]


async def test_a_continual_job_starts_from_the_production_adapter_and_checks_the_older_heldout_split(
    distilled: Distilled, services: ServiceProcesses
) -> None:
    """The issue's continual loop through topics: the teacher goes to production (model.promoted, which
    the tuner follows), then `--from production` continues its adapter on the new data, replaying the
    teacher's own training rows, and records the loss on the teacher's held-out split before and after."""
    cairn(
        services, "models", "promote", MODEL, "2", "--to", "production", "--reason", "e2e: continual tuning"
    )
    await production_known_to_the_tuner(services, 2)
    job = f"tune-{uuid.uuid4().hex[:10]}"
    args = ["tune", "start", "--dataset", "e2e-distil", "--version", "1", *TUNE, "--job-id", job]
    await asyncio.to_thread(cairn, services, *args, "--from", "production", "--replay-fraction", "1.0")
    out = ""
    for _ in range(120):  # the tuner records the job when it consumes the request
        try:
            out = await asyncio.to_thread(
                cairn, services, "tune", "status", job, "--follow", "--interval", "0.5"
            )
            break
        except RuntimeError as exc:
            if "no job" not in str(exc):
                raise
            await asyncio.sleep(1.0)
    found = re.search(rf"succeeded .*-> {re.escape(MODEL)}:(\d+)", out)
    assert found, out
    config, metrics = shown_dicts(cairn(services, "models", "show", MODEL, found.group(1)))
    assert (config["start_from"], config["parent_model"], config["parent_version"]) == (
        "production",
        MODEL,
        2,
    )
    assert (config["replay_dataset_id"], config["replay_dataset_version"]) == ("e2e-teacher-data", 1)
    assert metrics["replay_rows"] >= 1  # the teacher's training rows, mixed in again
    assert metrics["older_heldout_rows"] >= 1  # the teacher's held-out split, scored before and after
    assert metrics["parent_older_heldout_loss"] > 0
    assert metrics["older_heldout_loss"] > 0
