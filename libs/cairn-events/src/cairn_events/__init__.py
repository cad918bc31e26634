"""Cairn event contracts: a frozen pydantic model per event type and version, topics, JSON and Avro codecs.

The models are the source of truth; `python -m cairn_events.generate` writes the JSON
Schema and Avro files under `schemas/` from them, and the contract tests prove the two agree.
"""

from cairn_events.admin import AdminActionRecordedV1
from cairn_events.base import Event, Identifier, PromptName, PromptRef, RequestId, Timestamp
from cairn_events.codecs import CONTENT_TYPE_AVRO, CONTENT_TYPE_JSON, DecodeError, decode, encode
from cairn_events.common import (
    OVER_BUDGET_REASON,
    CacheOutcome,
    ChatMessage,
    ContextChunk,
    DeadLetterKind,
    GenerationParams,
    JsonScalar,
    LoraConfig,
    ModelStage,
    Quantization,
    RawHeader,
    ResponseStatus,
    RetrievalOptions,
    ReviewDecision,
    RouteAttempt,
    RouteDecision,
    SafetyFinding,
    SuiteScore,
    TokenUsage,
    Verdict,
)
from cairn_events.documents import DocumentReindexedV1
from cairn_events.experiments import ExperimentConcludedV1, VariantStatistics
from cairn_events.feedback import FeedbackSubmittedV1, ReviewRequestedV1, ReviewResolvedV1
from cairn_events.model_lifecycle import (
    DatasetPublishedV1,
    EvaluationCompletedV1,
    ModelPromotedV1,
    ModelRegisteredV1,
    TuningProgressedV1,
    TuningRequestedV1,
)
from cairn_events.operations import AlertRaisedV1, DeadLetterRecordedV1
from cairn_events.paths import schemas_dir
from cairn_events.registry import (
    EVENT_TYPES,
    PRIVILEGED_EVENT_TYPES,
    UnknownEventType,
    dataschema_uri,
    event_class,
)
from cairn_events.request_flow import (
    CompletionDeltaGeneratedV1,
    CompletionGeneratedV1,
    ContextAssembledV1,
    InputScreenedV1,
    PromptRenderedV1,
    RequestSubmittedV1,
    ResponseCompletedV1,
)
from cairn_events.topics import TopicSpec, load_topics, topic_of

__all__ = [
    "CONTENT_TYPE_AVRO",
    "CONTENT_TYPE_JSON",
    "EVENT_TYPES",
    "OVER_BUDGET_REASON",
    "PRIVILEGED_EVENT_TYPES",
    "AdminActionRecordedV1",
    "AlertRaisedV1",
    "CacheOutcome",
    "ChatMessage",
    "CompletionDeltaGeneratedV1",
    "CompletionGeneratedV1",
    "ContextAssembledV1",
    "ContextChunk",
    "DatasetPublishedV1",
    "DeadLetterKind",
    "DeadLetterRecordedV1",
    "DecodeError",
    "DocumentReindexedV1",
    "EvaluationCompletedV1",
    "Event",
    "ExperimentConcludedV1",
    "FeedbackSubmittedV1",
    "GenerationParams",
    "Identifier",
    "InputScreenedV1",
    "JsonScalar",
    "LoraConfig",
    "ModelPromotedV1",
    "ModelRegisteredV1",
    "ModelStage",
    "PromptName",
    "PromptRef",
    "PromptRenderedV1",
    "Quantization",
    "RawHeader",
    "RequestId",
    "RequestSubmittedV1",
    "ResponseCompletedV1",
    "ResponseStatus",
    "RetrievalOptions",
    "ReviewDecision",
    "ReviewRequestedV1",
    "ReviewResolvedV1",
    "RouteAttempt",
    "RouteDecision",
    "SafetyFinding",
    "SuiteScore",
    "Timestamp",
    "TokenUsage",
    "TopicSpec",
    "TuningProgressedV1",
    "TuningRequestedV1",
    "UnknownEventType",
    "VariantStatistics",
    "Verdict",
    "dataschema_uri",
    "decode",
    "encode",
    "event_class",
    "load_topics",
    "schemas_dir",
    "topic_of",
]
