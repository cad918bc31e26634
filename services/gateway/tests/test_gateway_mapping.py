"""The mapping of OpenAI chat completions to request events and of responses to OpenAI bodies."""

from __future__ import annotations

from typing import Any

import pytest

from cairn_events import ResponseCompletedV1
from cairn_gateway.domain.chat import ChatCompletionRequest
from cairn_gateway.domain.errors import GatewayError
from cairn_gateway.domain.mapping import (
    Target,
    parse_model,
    refusal,
    request_id_for,
    to_completion,
    to_request,
)
from cairn_gateway.domain.models import model_list

from .conftest import NOW, answer


def body(**fields: Any) -> ChatCompletionRequest:
    data: dict[str, Any] = {"model": "qa", "messages": [{"role": "user", "content": "What does yield do?"}]}
    data.update(fields)
    return ChatCompletionRequest.model_validate(data)


def event(**fields: Any) -> Any:
    return to_request(body(**fields), request_id="gw-1", tenant="acme", default_prompt="qa", now=NOW)


@pytest.mark.parametrize(
    ("model", "target"),
    [
        ("qa", Target("qa", None)),
        ("qa@beta", Target("qa@beta", None)),
        ("qa:3", Target("qa:3", None)),
        ("prompt:qa@beta", Target("qa@beta", None)),
        ("model:cairn-qa:2", Target("qa", "cairn-qa:2")),
        ("model:cairn-qa@staging", Target("qa", "cairn-qa@staging")),
        ("qa@beta+model:cairn-qa:2", Target("qa@beta", "cairn-qa:2")),
        ("model:cairn-qa+prompt:support", Target("support", "cairn-qa")),
    ],
)
def test_the_model_field_names_a_prompt_and_a_model(model: str, target: Target) -> None:
    assert parse_model(model, "qa") == target


@pytest.mark.parametrize(
    "model", ["", "qa+qa", "model:a+model:b", "model:", "qa@", "what is this?", "model:x@STAGE"]
)
def test_a_model_field_naming_nothing_is_a_400_on_param_model(model: str) -> None:
    with pytest.raises(GatewayError) as raised:
        parse_model(model, "qa")
    assert (raised.value.status, raised.value.param, raised.value.code) == (400, "model", "model_not_found")


def test_messages_params_and_user_become_the_request_event() -> None:
    made = event(
        model="qa@beta+model:cairn-qa:2",
        messages=[
            {"role": "developer", "content": "Be brief."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "What is"}, {"type": "text", "text": "yield?"}],
            },
        ],
        temperature=0.3,
        max_tokens=64,
        seed=7,
        stop="\n\n",
        user="user-42",
        metadata={"app": "docs"},
        variables={"topic": "generators"},
    )
    assert made.request_id == "gw-1"
    assert made.tenant == "acme"
    assert (made.prompt, made.model) == ("qa@beta", "cairn-qa:2")
    assert [(m.role, m.content) for m in made.messages] == [
        ("system", "Be brief."),
        ("user", "What is\nyield?"),
    ]
    assert (made.params.temperature, made.params.max_tokens, made.params.seed) == (0.3, 64, 7)
    assert made.params.stop == ["\n\n"]
    assert made.user_id == "user-42"
    assert made.variables == {"topic": "generators"}
    assert made.metadata == {"app": "docs", "gateway.model": "qa@beta+model:cairn-qa:2"}


def test_unset_sampling_params_stay_unset_so_the_prompt_defaults_apply() -> None:
    assert event().params.model_fields_set == set()
    assert event(max_completion_tokens=32).params.max_tokens == 32


@pytest.mark.parametrize(
    ("tier", "latency_class"),
    [("flex", "batch"), ("priority", "interactive"), ("auto", None), ("default", None)],
)
def test_the_service_tier_asks_the_routing_policy_for_a_latency_class(
    tier: str, latency_class: str | None
) -> None:
    params = event(service_tier=tier).params
    assert params.latency_class == latency_class
    assert ("latency_class" in params.model_fields_set) is (latency_class is not None)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"temperature": 3.0}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"n": 2}, "n"),
        ({"service_tier": "scale"}, "service_tier"),
        ({"tools": [{"type": "function"}]}, "tools"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.role"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages.0.content"),
        ({"messages": [{"role": "user"}]}, "messages.0.content"),
    ],
)
def test_what_cairn_cannot_honour_is_a_400_naming_the_param(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as raised:
        event(**fields)
    assert raised.value.status == 400
    assert raised.value.param == param
    assert raised.value.body()["error"]["type"] == "invalid_request_error"


def test_stream_true_asks_inference_for_deltas_and_stream_false_does_not() -> None:
    assert event(stream=True).params.stream is True
    assert event().params.stream is False


def test_the_request_id_is_derived_from_tenant_and_idempotency_key() -> None:
    assert request_id_for("acme", "k-1") == request_id_for("acme", "k-1")
    assert request_id_for("acme", "k-1") != request_id_for("beta", "k-1")
    assert request_id_for("acme", None) != request_id_for("acme", None)
    with pytest.raises(GatewayError):
        request_id_for("acme", "ü" * 3)


def test_a_completed_response_is_an_openai_chat_completion() -> None:
    response = answer(event(), text="yield makes a generator [1].")
    out = to_completion(response, asked_model="qa", max_tokens=None)
    assert out["id"] == "chatcmpl-gw-1"
    assert out["object"] == "chat.completion"
    assert out["model"] == "cairn-qa:2"
    assert out["created"] == int(NOW.timestamp())
    assert out["choices"][0]["message"] == {
        "role": "assistant",
        "content": "yield makes a generator [1].",
        "refusal": None,
    }
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["usage"] == {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    assert out["cairn"]["request_id"] == "gw-1"
    assert out["cairn"]["status"] == "completed"


def test_an_answer_that_used_every_token_finished_for_length() -> None:
    out = to_completion(answer(event()), asked_model="qa", max_tokens=7)
    assert out["choices"][0]["finish_reason"] == "length"


def test_a_blocked_answer_is_a_200_with_finish_reason_content_filter() -> None:
    response = answer(event(), status="blocked", text=None, reason="pii in output")
    assert refusal(response) is None
    out = to_completion(response, asked_model="qa", max_tokens=None)
    assert out["choices"][0]["finish_reason"] == "content_filter"
    assert out["choices"][0]["message"]["content"] is None
    assert out["choices"][0]["message"]["refusal"] == "pii in output"


@pytest.mark.parametrize(
    ("status", "http", "kind", "code"),
    [
        ("rejected", 400, "invalid_request_error", "request_rejected"),
        ("failed", 500, "server_error", "request_failed"),
        ("held", 409, "held_for_review", "held_for_review"),
    ],
)
def test_rejected_failed_and_held_answers_are_openai_errors(
    status: str, http: int, kind: str, code: str
) -> None:
    response: ResponseCompletedV1 = answer(event(), status=status, text=None, reason="because")
    error = refusal(response)
    assert error is not None
    assert (error.status, error.type, error.code, error.request_id) == (http, kind, code, "gw-1")
    assert "because" in error.body()["error"]["message"]


def test_a_held_answer_is_a_409_naming_the_request_that_clients_do_not_retry_at_once() -> None:
    error = refusal(answer(event(), status="held", text=None, reason="held for human review (review rev-1)"))
    assert error is not None
    message = error.body()["error"]["message"]
    assert "gw-1" in message
    assert "review rev-1" in message
    assert "same Idempotency-Key" in message
    assert error.headers() == {"X-Cairn-Request-Id": "gw-1", "x-should-retry": "false"}


def test_models_lists_prompts_by_label_and_registry_models_by_stage() -> None:
    listed = model_list(
        [{"name": "qa", "tenant": "default", "labels": {"production": 2, "beta": 3}}],
        [
            {
                "name": "cairn-qa",
                "production": 2,
                "staging": [3],
                "aliases": {},
                "versions": [{"version": 2, "stage": "production"}, {"version": 3, "stage": "staging"}],
            }
        ],
        "qa",
    )
    ids = [m["id"] for m in listed["data"]]
    assert listed["object"] == "list"
    assert ids == [
        "qa",
        "prompt:qa@beta",
        "prompt:qa@production",
        "model:cairn-qa",
        "model:cairn-qa@staging",
        "model:cairn-qa:2",
        "model:cairn-qa:3",
    ]
    for model_id in ids:  # every listed id is accepted back in `model`
        parse_model(model_id, "qa")
