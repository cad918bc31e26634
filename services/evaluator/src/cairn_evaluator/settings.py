"""Settings of the evaluator service (env prefix CAIRN_)."""

from typing import Literal

from pydantic import Field, field_validator

from cairn_bus.settings import PostgresSettings, S3Settings, ServiceSettings, http_api_settings
from cairn_evaluator.online.windows import Window


class Settings(ServiceSettings, PostgresSettings, S3Settings, http_api_settings(8084, "registry")):  # type: ignore[misc]
    """The model registry, evaluation runs over the bus, and the promotion gate."""

    service_name: str = Field("evaluator", description="Service name.")
    suites_dir: str = Field("infra/eval/suites", description="Folder of evaluation suites (`*.yaml`).")
    registry_model: str = Field("cairn-qa", description="The registry model the CLI acts on by default.")
    run_timeout_s: float = Field(
        900.0, gt=0, description="A run with unanswered cases after this many seconds ends failed."
    )
    auto_promote_production: bool = Field(
        False, description="Also promote a candidate that passes the gate to production (not only staging)."
    )
    heldout_min_improvement: float = Field(
        0.0,
        ge=0.0,
        description="How much the candidate's held-out token F1 must exceed the baseline's (0: strictly more).",
    )
    heldout_min_f1: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Held-out token F1 floor (the only held-out gate without a baseline).",
    )
    heldout_max_cases: int = Field(8, ge=0, description="Most held-out rows re-asked per run.")
    heldout_max_tokens: int = Field(48, ge=1, le=8192, description="max_tokens of held-out requests.")
    heldout_max_facet_regression: float | None = Field(
        None,
        ge=0.0,
        description="Largest held-out token F1 drop vs the baseline allowed in any facet slice (tenant, "
        "prompt, topic, length) with at least `heldout_min_facet_cases` cases; none (default): not gated.",
    )
    heldout_min_facet_cases: int = Field(
        5, ge=1, description="Fewest held-out cases per side a facet slice needs to be gated."
    )
    eval_tenant: str = Field("default", description="Tenant of the evaluation requests.")

    # the online part: quality signals on live traffic
    groundedness_sample_rate: float = Field(
        1.0, ge=0.0, le=1.0, description="Share of live answers with citations scored for groundedness."
    )
    groundedness_embedder: Literal["minilm", "lexical"] = Field(
        "minilm",
        description="minilm: all-MiniLM-L6-v2 similarity plus lexical overlap; lexical: overlap only "
        "(request drift then embeds hashed words).",
    )
    groundedness_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="Blend a sentence needs to count as supported by the chunks."
    )
    hallucination_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="A scored answer below this groundedness counts as a hallucination."
    )
    request_sample_rate: float = Field(
        1.0, ge=0.0, le=1.0, description="Share of live requests whose question is embedded for drift."
    )
    drift_interval_s: float = Field(300.0, ge=0.0, description="Seconds between drift checks (0: never).")
    drift_recent_window: str = Field(
        "1h", description="The recent window: a duration (`1h`) or a count of the latest samples (`200`)."
    )
    drift_reference_window: str = Field(
        "7d", description="The reference window before the recent one: a duration (`7d`) or a count."
    )
    drift_min_samples: int = Field(30, ge=2, description="Fewest samples per window a signal needs.")
    drift_fetch_limit: int = Field(
        50_000, ge=100, description="Most records of each kind read per drift check (the newest)."
    )
    drift_centroid_threshold: float = Field(
        0.1, gt=0.0, description="Request embeddings: centroid cosine distance that is drift."
    )
    drift_psi_threshold: float = Field(
        0.25, gt=0.0, description="PSI that is drift (request similarity, prompt length, tokens, feedback)."
    )
    drift_refusal_rate_threshold: float = Field(
        0.1, gt=0.0, description="Absolute change of the refusal rate that is drift."
    )
    groundedness_drop_threshold: float = Field(
        0.15, gt=0.0, description="Drop of mean groundedness (reference minus recent) that raises an alert."
    )
    alert_cooldown_s: float = Field(
        3600.0, ge=0.0, description="The same alert for the same scope fires again only after this."
    )

    # shadow traffic: live requests mirrored to candidates, scored in pairs
    shadow_refresh_s: float = Field(
        5.0, ge=0.0, description="Seconds the mirror keeps the list of shadows before reading it again."
    )
    shadow_gate_min_pairs: int = Field(
        0,
        ge=0,
        description="Scored shadow pairs an evaluation run's candidate needs (0: shadow evidence is "
        "reported, not gated).",
    )
    shadow_gate_max_drop: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="How far the candidate's mean groundedness may fall below live's on the same requests.",
    )
    shadow_report_limit: int = Field(
        50_000, ge=10, description="Most mirrored requests (the newest) a shadow report reads."
    )
    price_table: str | None = Field(
        None,
        description="YAML price table shadow reports price tokens with; unset: `<repo>/infra/prices.yaml` "
        "if present, else no cost.",
    )

    # prompt experiments: variants compared on live feedback by a sequential test (docs/prompt-experiments.md)
    experiment_alpha: float = Field(
        0.05,
        gt=0.0,
        lt=1.0,
        description="False-positive rate the experiment test controls (split over arms).",
    )
    experiment_min_samples: int = Field(
        30, ge=1, description="Requests with feedback every arm needs before an experiment can conclude."
    )
    experiment_mixing_variance: float = Field(
        0.1,
        gt=0.0,
        description="The mSPRT's mixing variance τ² on the difference of positive-feedback rates.",
    )
    experiment_positive_rating: int = Field(
        4, ge=1, le=5, description="A feedback rating at or above this counts as positive."
    )
    experiment_refusal_margin: float = Field(
        0.05, ge=0.0, le=1.0, description="How far the winner's refusal rate may exceed another arm's."
    )
    experiment_groundedness_margin: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="How far the winner's mean groundedness may fall below another arm's.",
    )
    experiment_fetch_limit: int = Field(
        100_000, ge=100, description="Most requests of an experiment (the newest) a check reads."
    )

    @field_validator("drift_recent_window", "drift_reference_window")
    @classmethod
    def _window(cls, value: str) -> str:
        Window.parse(value)
        return value
