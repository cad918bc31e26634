"""Pure rules: batching policy, stop strings, chat formatting, usage, failure reasons, outcomes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cairn_events import ChatMessage, GenerationParams, ResponseStatus, TokenUsage, Verdict
from cairn_inference.domain import (
    GENERATE_ON,
    BackendUnavailableError,
    Completion,
    GenerationTimeoutError,
    ModelError,
    batch_key,
    chat_dicts,
    completion_event,
    dispatch_delay,
    ended_response,
    failure_reason,
    find_stop,
    plan_batch,
    render_chatml,
    truncate_at_stop,
    usage_from_openai,
)
from cairn_inference.domain.references import ResolvedModel

from .conftest import screened

NOW = datetime(2025, 3, 4, 9, 15, 22, tzinfo=UTC)


def test_greedy_requests_share_a_key_whatever_their_limits_stops_and_seeds() -> None:
    a = batch_key(GenerationParams(max_tokens=5, stop=["\n"], seed=1))
    b = batch_key(GenerationParams(max_tokens=300))
    assert a == b
    assert a is not None


def test_adapters_and_sampling_settings_split_batches() -> None:
    greedy = batch_key(GenerationParams())
    assert batch_key(GenerationParams(), "support-v2") != greedy
    hot = batch_key(GenerationParams(temperature=0.7))
    assert hot != greedy
    assert batch_key(GenerationParams(temperature=0.7)) == hot
    assert batch_key(GenerationParams(temperature=0.7, top_p=0.9)) != hot


def test_seeded_sampling_runs_alone() -> None:
    assert batch_key(GenerationParams(temperature=0.7, seed=7)) is None


def test_plan_takes_the_oldest_and_its_kind_up_to_the_limit() -> None:
    g, s = ("a", "greedy", 0.0, 1.0), ("a", "sample", 0.5, 1.0)
    assert plan_batch([g, s, g, g, s], 8) == [0, 2, 3]
    assert plan_batch([s, g, s, s], 2) == [0, 2]
    assert plan_batch([None, g, g], 8) == [0]
    assert plan_batch([g, g, g], 1) == [0]
    assert plan_batch([], 4) == []
    with pytest.raises(ValueError, match="max_batch_size"):
        plan_batch([g], 0)


keys = st.one_of(st.none(), st.sampled_from([("x", "greedy", 0.0, 1.0), (None, "sample", 0.5, 1.0)]))


@given(st.lists(keys, max_size=30), st.integers(min_value=1, max_value=10))
def test_plan_is_a_fifo_subset_of_one_key(waiting: list[object], size: int) -> None:
    picked = plan_batch(waiting, size)  # type: ignore[arg-type]
    if not waiting:
        assert picked == []
        return
    assert picked[0] == 0
    assert picked == sorted(set(picked))
    assert 1 <= len(picked) <= size
    assert all(waiting[i] == waiting[0] for i in picked)
    if waiting[0] is None:
        assert picked == [0]


def test_dispatch_waits_out_the_window_unless_the_batch_is_full() -> None:
    assert dispatch_delay(
        now=10.0, oldest_enqueued_at=10.0, window_s=0.02, waiting=1, max_batch_size=8
    ) == pytest.approx(0.02)
    assert dispatch_delay(10.015, 10.0, 0.02, 3, 8) == pytest.approx(0.005)
    assert dispatch_delay(10.5, 10.0, 0.02, 3, 8) == 0.0
    assert dispatch_delay(10.0, 10.0, 0.02, 8, 8) == 0.0
    assert dispatch_delay(10.0, 10.0, 0.0, 1, 8) == 0.0


def test_stop_strings_cut_at_the_earliest_match() -> None:
    assert truncate_at_stop("Paris.\nUser: next", ["User:", "\n"]) == ("Paris.", True)
    assert truncate_at_stop("Paris.", ["###"]) == ("Paris.", False)
    assert truncate_at_stop("Paris.", [""]) == ("Paris.", False)
    assert find_stop("abcabc", ["c", "b"]) == 1


@given(st.text(max_size=40), st.lists(st.text(min_size=1, max_size=4), max_size=3))
def test_truncated_text_holds_no_stop_string_and_is_a_prefix(text: str, stops: list[str]) -> None:
    cut, hit = truncate_at_stop(text, stops)
    assert text.startswith(cut)
    assert hit == any(s in text for s in stops)
    if hit:
        assert not any(s in cut for s in stops)


def test_system_turns_come_first_and_chatml_ends_with_the_assistant_turn() -> None:
    messages = [
        ChatMessage(role="user", content="hi"),
        ChatMessage(role="system", content="Context: X"),
        ChatMessage(role="assistant", content="hello"),
    ]
    assert [m["role"] for m in chat_dicts(messages)] == ["system", "user", "assistant"]
    text = render_chatml(messages)
    assert text.startswith("<|im_start|>system\nContext: X<|im_end|>\n")
    assert text.endswith("<|im_start|>assistant\n")
    with pytest.raises(ValueError, match="at least one"):
        chat_dicts([])


def test_usage_is_read_from_openai_fields_or_refused() -> None:
    assert usage_from_openai({"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}) == TokenUsage(
        input_tokens=12, output_tokens=3
    )
    for bad in (
        None,
        {},
        {"prompt_tokens": 1},
        {"prompt_tokens": -1, "completion_tokens": 2},
        {"prompt_tokens": True, "completion_tokens": 2},
    ):
        with pytest.raises(ValueError, match="usage"):
            usage_from_openai(bad)


def test_failure_reasons_say_what_happened() -> None:
    assert failure_reason(TimeoutError(), 30) == "generation timed out after 30 s"
    assert (
        failure_reason(GenerationTimeoutError("no answer in 5 s")) == "generation timed out: no answer in 5 s"
    )
    assert failure_reason(BackendUnavailableError("connection refused")).startswith(
        "inference backend unavailable"
    )
    assert failure_reason(ModelError("bad prompt")) == "model error: bad prompt"
    assert failure_reason(RuntimeError("boom")) == "model error: RuntimeError: boom"


def test_only_allowed_and_redacted_input_is_generated_for() -> None:
    assert {Verdict.ALLOW, Verdict.REDACT} == GENERATE_ON


def test_completion_event_carries_prompt_chunks_and_measurements() -> None:
    event = screened()
    completion = Completion(
        text="5 days",
        finish_reason="stop",
        usage=TokenUsage(input_tokens=9, output_tokens=2),
        latency_ms=40.0,
        ttft_ms=None,
        backend="sglang",
        model="m",
        model_version="2",
        adapter="a",
    )
    out = completion_event(event, completion, NOW)
    assert (out.request_id, out.tenant, out.prompt_name, out.prompt_version) == (
        event.request_id,
        event.tenant,
        event.prompt_name,
        event.prompt_version,
    )
    assert out.chunks == event.chunks
    assert (out.model, out.model_version, out.adapter, out.backend) == ("m", "2", "a", "sglang")
    assert out.time_to_first_token_ms is None
    assert out.generated_at == NOW


def test_failed_response_says_why() -> None:
    served = ResolvedModel("cairn-qa", 2, "cairn-qa:2", "s3://a/")
    out = ended_response(screened(), ResponseStatus.FAILED, reason="model error: x", now=NOW, served=served)
    assert out.status is ResponseStatus.FAILED
    assert out.reason == "model error: x"
    assert (out.model, out.model_version, out.adapter) == ("cairn-qa", "2", "cairn-qa:2")
    assert out.text is None
    assert out.prompt_name == screened().prompt_name


def test_a_rejected_response_names_no_model() -> None:
    out = ended_response(screened(), ResponseStatus.REJECTED, reason="over budget", now=NOW)
    assert (out.status, out.reason, out.model, out.route) == (
        ResponseStatus.REJECTED,
        "over budget",
        None,
        None,
    )
