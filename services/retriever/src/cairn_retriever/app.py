"""The retriever service: grounds rendered prompts in retrieved documents (`cairn.prompts` →
`cairn.contexts`), and answers `failed` on `cairn.responses` when it has to give a request up.
Feedback (`cairn.feedback`) moves the ranking of the chunks it is about (`domain/priors.py`); watched
sources are re-ingested when they change, one event each on `cairn.documents` (`reindex.py`).

Beside the consumer it serves the ingestion and search HTTP API (`api.py`, per tenant, behind API
keys); installing the bootstrap admin key is published on `cairn.admin`."""

from __future__ import annotations

from cairn_bus import EventRouter
from cairn_bus.service import run_service
from cairn_events import (
    AdminActionRecordedV1,
    ContextAssembledV1,
    DocumentReindexedV1,
    FeedbackSubmittedV1,
    PromptRenderedV1,
    ResponseCompletedV1,
)
from cairn_retriever.bootstrap import Deps, build
from cairn_retriever.handlers import answer_dead_lettered_prompt, on_feedback_submitted, on_prompt_rendered
from cairn_retriever.settings import Settings

router: EventRouter[Deps] = EventRouter("retriever")
router.handler(PromptRenderedV1)(on_prompt_rendered)
router.handler(FeedbackSubmittedV1)(on_feedback_submitted)  # the retrieval loop: feedback moves ranking
router.answer_dead_lettered(PromptRenderedV1, ResponseCompletedV1)(answer_dead_lettered_prompt)
router.publishes(ContextAssembledV1, ResponseCompletedV1, AdminActionRecordedV1)  # admin: the bootstrap key
router.publishes(DocumentReindexedV1)  # scans of the watched sources (reindex.py)


def main() -> None:
    """Entry point of `python -m cairn_retriever`."""
    run_service(router, Settings(), build)
