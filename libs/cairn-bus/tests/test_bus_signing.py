"""Signed privileged events: the publisher signs, the dispatcher verifies before any handler runs."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from cairn_bus import Dispatcher, EventMeta, EventRouter, InMemoryPublisher, Outcome, RawRecord
from cairn_bus.publisher import OutgoingMessage
from cairn_bus.signing import (
    SIGNATURE_HEADER,
    SIGNATURE_KEY_HEADER,
    SIGNED_HEADERS,
    KeyRing,
    SignatureError,
    SignaturePolicy,
    Signer,
    SigningConfigError,
    TrustedKey,
    generate_private_key_pem,
    key_id,
    signer_from_env,
    signing_input,
)
from cairn_events import (
    EVENT_TYPES,
    PRIVILEGED_EVENT_TYPES,
    AdminActionRecordedV1,
    DeadLetterKind,
    DeadLetterRecordedV1,
    Event,
    ExperimentConcludedV1,
    ModelPromotedV1,
    ModelRegisteredV1,
    RequestSubmittedV1,
    ReviewResolvedV1,
    load_topics,
    schemas_dir,
)

GROUP = "cairn-signing-test"


def example(event_class: type[Event], name: str) -> Event:
    family = event_class.event_type.rsplit(".", 1)[0]
    return event_class.model_validate(json.loads((schemas_dir() / family / "examples" / name).read_text()))


PROMOTION = example(ModelPromotedV1, "v1-to-production.json")


def signer() -> Signer:
    return Signer.from_pem(generate_private_key_pem())


def ring(**owners: Signer) -> KeyRing:
    return KeyRing(TrustedKey(owner, s.key_id, s.private_key.public_key()) for owner, s in owners.items())


def signed(event: Event = PROMOTION, by: Signer | None = None) -> OutgoingMessage:
    return InMemoryPublisher("/cairn/evaluator", signer=by).build(event)


def record_of(message: OutgoingMessage, **changes: object) -> RawRecord:
    fields: dict[str, object] = {
        "topic": message.topic,
        "partition": 0,
        "offset": 7,
        "value": message.value,
        "key": message.key,
        "headers": list(message.headers),
    }
    fields.update(changes)
    return RawRecord(**fields)  # type: ignore[arg-type]


def replace_header(headers: list[tuple[str, bytes]], name: str, value: bytes) -> list[tuple[str, bytes]]:
    return [(k, value if k == name else v) for k, v in headers]


# --- the privileged list --------------------------------------------------------------------------


def test_the_privileged_types_are_the_ones_that_change_serving_or_rights() -> None:
    assert {
        ModelPromotedV1.event_type,
        ModelRegisteredV1.event_type,
        ReviewResolvedV1.event_type,
        AdminActionRecordedV1.event_type,
        ExperimentConcludedV1.event_type,
    } == PRIVILEGED_EVENT_TYPES
    assert set(EVENT_TYPES) >= PRIVILEGED_EVENT_TYPES
    # every privileged topic has a producer that can hold a key: a service or the CLI (`upstream`)
    for event_type in PRIVILEGED_EVENT_TYPES:
        assert load_topics()[EVENT_TYPES[event_type].topic].producers


# --- signing and verifying --------------------------------------------------------------------------


def test_a_signed_promotion_verifies_with_its_producers_key() -> None:
    evaluator = signer()
    message = signed(by=evaluator)
    names = [k for k, _ in message.headers]
    assert names[-2:] == [SIGNATURE_HEADER, SIGNATURE_KEY_HEADER]
    assert dict(message.headers)[SIGNATURE_KEY_HEADER] == evaluator.key_id.encode()
    assert len(base64.b64decode(dict(message.headers)[SIGNATURE_HEADER])) == 64
    key = ring(evaluator=evaluator).verify(PROMOTION.event_type, message.headers, message.value)
    assert key.owner == "evaluator"


def test_only_privileged_events_are_signed() -> None:
    request = RequestSubmittedV1.model_validate(
        json.loads((schemas_dir() / "cairn.request.submitted" / "examples" / "v1-minimal.json").read_text())
    )
    headers = dict(signed(request, by=signer()).headers)
    assert SIGNATURE_HEADER not in headers
    assert SIGNATURE_KEY_HEADER not in headers


def test_a_tampered_payload_is_forged() -> None:
    evaluator = signer()
    message = signed(by=evaluator)
    tampered = message.value.replace(b'"version":5', b'"version":6')
    assert tampered != message.value
    with pytest.raises(SignatureError, match="does not verify") as caught:
        ring(evaluator=evaluator).verify(PROMOTION.event_type, message.headers, tampered)
    assert caught.value.kind is DeadLetterKind.FORGED


@pytest.mark.parametrize("name", SIGNED_HEADERS)
def test_every_signed_header_is_covered(name: str) -> None:
    evaluator = signer()
    message = signed(by=evaluator)
    headers = (
        [*message.headers, (name, b"x")]
        if name not in dict(message.headers)
        else (replace_header(message.headers, name, dict(message.headers)[name] + b"x"))
    )
    with pytest.raises(SignatureError) as caught:
        ring(evaluator=evaluator).verify(PROMOTION.event_type, headers, message.value)
    assert caught.value.kind is DeadLetterKind.FORGED


def test_a_header_added_twice_counts_as_the_one_the_consumer_reads() -> None:
    evaluator = signer()
    message = signed(by=evaluator)
    # a second ce_id after the signed one is what `meta_from_headers` would act on
    headers = [*message.headers, ("ce_id", b"another-id")]
    with pytest.raises(SignatureError):
        ring(evaluator=evaluator).verify(PROMOTION.event_type, headers, message.value)


def test_an_unsigned_event_is_unsigned() -> None:
    message = signed(by=None)
    with pytest.raises(SignatureError, match="must be signed") as caught:
        ring(evaluator=signer()).verify(PROMOTION.event_type, message.headers, message.value)
    assert caught.value.kind is DeadLetterKind.UNSIGNED


def test_a_key_nobody_trusts_is_forged() -> None:
    message = signed(by=signer())
    with pytest.raises(SignatureError, match="not trusted") as caught:
        ring(evaluator=signer()).verify(PROMOTION.event_type, message.headers, message.value)
    assert caught.value.kind is DeadLetterKind.FORGED


def test_a_signature_made_with_another_key_under_a_trusted_key_id_is_forged() -> None:
    evaluator, mallory = signer(), signer()
    message = signed(by=mallory)
    headers = replace_header(message.headers, SIGNATURE_KEY_HEADER, evaluator.key_id.encode())
    with pytest.raises(SignatureError, match="does not verify"):
        ring(evaluator=evaluator).verify(PROMOTION.event_type, headers, message.value)


def test_a_signature_that_is_not_base64_is_forged() -> None:
    evaluator = signer()
    message = signed(by=evaluator)
    headers = replace_header(message.headers, SIGNATURE_HEADER, b"not base64!")
    with pytest.raises(SignatureError) as caught:
        ring(evaluator=evaluator).verify(PROMOTION.event_type, headers, message.value)
    assert caught.value.kind is DeadLetterKind.FORGED


def test_the_key_of_a_service_that_does_not_produce_the_topic_is_forged() -> None:
    inference = signer()  # inference consumes cairn.models, it never produces there
    message = signed(by=inference)
    keys = ring(inference=inference)
    with pytest.raises(SignatureError, match="not a producer of its topic") as caught:
        keys.verify(PROMOTION.event_type, message.headers, message.value)
    assert caught.value.kind is DeadLetterKind.FORGED
    # the same key is good for a topic inference produces, were a privileged one there
    keys.verify(PROMOTION.event_type, message.headers, message.value, producers={"inference"})


def test_the_cli_key_signs_as_upstream() -> None:
    cli = signer()
    message = signed(by=cli)
    assert ring(cli=cli).verify(PROMOTION.event_type, message.headers, message.value).owner == "cli"
    with pytest.raises(SignatureError, match="not a producer"):
        ring(cli=cli).verify(PROMOTION.event_type, message.headers, message.value, producers={"evaluator"})


def test_the_signing_input_tells_absent_from_empty_and_moved_bytes() -> None:
    base = [("ce_id", b"a"), ("ce_subject", b"")]
    assert signing_input(base, b"v") != signing_input([("ce_id", b"a")], b"v")
    assert signing_input([("ce_id", b"ab")], b"") != signing_input([("ce_id", b"a")], b"b")


# --- keys on disk and from the environment ---------------------------------------------------------


def write_pub(folder: Path, owner: str, *signers: Signer) -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"{owner}.pub").write_bytes(b"".join(s.public_pem() for s in signers))


def test_a_rotation_trusts_the_old_and_the_new_key_of_a_service(tmp_path: Path) -> None:
    old, new = signer(), signer()
    write_pub(tmp_path, "evaluator", old, new)
    keys = KeyRing.from_dir(tmp_path)
    assert {k.key_id for k in keys.keys.values()} == {old.key_id, new.key_id}
    for by in (old, new):
        message = signed(by=by)
        assert keys.verify(PROMOTION.event_type, message.headers, message.value).owner == "evaluator"
    # once the old key is dropped from the file, its signatures stop verifying
    write_pub(tmp_path, "evaluator", new)
    message = signed(by=old)
    with pytest.raises(SignatureError, match="not trusted"):
        KeyRing.from_dir(tmp_path).verify(PROMOTION.event_type, message.headers, message.value)


def test_one_key_trusted_for_two_owners_is_refused(tmp_path: Path) -> None:
    shared = signer()
    write_pub(tmp_path, "evaluator", shared)
    write_pub(tmp_path, "tuner", shared)
    with pytest.raises(SigningConfigError, match="both"):
        KeyRing.from_dir(tmp_path)


def test_a_pub_file_without_a_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "evaluator.pub").write_text("not a key\n")
    with pytest.raises(SigningConfigError, match="no PEM public key"):
        KeyRing.from_dir(tmp_path)


def test_the_signer_comes_from_the_signing_key_secret(tmp_path: Path) -> None:
    pem = generate_private_key_pem()
    key_file = tmp_path / "evaluator.pem"
    key_file.write_bytes(pem)
    from_file = signer_from_env({"CAIRN_SIGNING_KEY_FILE": str(key_file)})
    from_value = signer_from_env({"CAIRN_SIGNING_KEY": pem.decode()})
    assert from_file is not None
    assert from_value is not None
    assert from_file.key_id == from_value.key_id == key_id(from_file.private_key.public_key())
    assert signer_from_env({}) is None
    with pytest.raises(SigningConfigError, match="not a PEM private key"):
        signer_from_env({"CAIRN_SIGNING_KEY": "garbage"})


def test_the_policy_verifies_with_keys_refuses_to_start_without_them_when_required(tmp_path: Path) -> None:
    write_pub(tmp_path, "evaluator", signer())
    assert SignaturePolicy.from_env({"CAIRN_TRUSTED_KEYS_DIR": str(tmp_path)}).enabled
    assert not SignaturePolicy.from_env({}).enabled
    with pytest.raises(SigningConfigError, match="CAIRN_REQUIRE_SIGNATURES"):
        SignaturePolicy.from_env({"CAIRN_REQUIRE_SIGNATURES": "true"})
    with pytest.raises(SigningConfigError, match="does not exist"):
        SignaturePolicy.from_env({"CAIRN_TRUSTED_KEYS_DIR": str(tmp_path / "missing")})


def test_a_publisher_without_a_key_refuses_privileged_events_when_signatures_are_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cairn_bus.kafka import KafkaPublisher

    for var in ("CAIRN_SIGNING_KEY", "CAIRN_SIGNING_KEY_FILE", "CAIRN_VAULT_ADDR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CAIRN_REQUIRE_SIGNATURES", "true")
    publisher = KafkaPublisher(None, "/cairn/evaluator")  # type: ignore[arg-type]  # never sends
    with pytest.raises(SigningConfigError, match="not published unsigned"):
        publisher.build(PROMOTION)
    monkeypatch.setenv("CAIRN_SIGNING_KEY", generate_private_key_pem().decode())
    headers = dict(KafkaPublisher(None, "/cairn/evaluator").build(PROMOTION).headers)  # type: ignore[arg-type]
    assert SIGNATURE_HEADER in headers


# --- the dispatcher --------------------------------------------------------------------------------


class Deps:
    def __init__(self) -> None:
        self.handled: list[tuple[Event, EventMeta]] = []


async def record_call(event: Event, meta: EventMeta, deps: Deps) -> None:
    deps.handled.append((event, meta))


def promotion_router(catch_all: bool = False) -> EventRouter[Deps]:
    router: EventRouter[Deps] = EventRouter("signing-test")
    if catch_all:
        router.all_events(record_call)
    else:
        router.handler(ModelPromotedV1)(record_call)
    return router


def dispatcher(
    keys: KeyRing | None, catch_all: bool = False
) -> tuple[Dispatcher[Deps], Deps, InMemoryPublisher]:
    deps, dead = Deps(), InMemoryPublisher("/cairn/signing-test")
    return (
        Dispatcher(promotion_router(catch_all), deps, dead, group_id=GROUP, signatures=SignaturePolicy(keys)),
        deps,
        dead,
    )


async def test_the_dispatcher_hands_a_genuine_promotion_to_its_handler() -> None:
    evaluator = signer()
    run, deps, dead = dispatcher(ring(evaluator=evaluator))
    assert await run.dispatch(record_of(signed(by=evaluator))) is Outcome.HANDLED
    assert [event for event, _ in deps.handled] == [PROMOTION]
    assert dead.messages == []


@pytest.mark.parametrize(
    ("by", "kind", "reason"),
    [
        (None, DeadLetterKind.UNSIGNED, "must be signed"),
        ("stranger", DeadLetterKind.FORGED, "not trusted"),
        ("inference", DeadLetterKind.FORGED, "not a producer"),
    ],
)
async def test_the_dispatcher_dead_letters_a_forgery_before_the_handler(
    by: str | None, kind: DeadLetterKind, reason: str
) -> None:
    keys = {"evaluator": signer(), "inference": signer(), "stranger": signer()}
    trusted = ring(evaluator=keys["evaluator"], inference=keys["inference"])
    run, deps, dead = dispatcher(trusted)
    record = record_of(signed(by=keys[by] if by else None))
    assert await run.dispatch(record) is Outcome.DEADLETTERED
    assert deps.handled == []
    [letter] = dead.events()
    assert isinstance(letter, DeadLetterRecordedV1)
    assert letter.error_kind is kind
    assert reason in letter.reason
    assert letter.origin_topic == "cairn.models"
    assert letter.original_value_b64 == base64.b64encode(record.value or b"").decode()


async def test_the_dispatcher_dead_letters_a_tampered_record() -> None:
    evaluator = signer()
    run, deps, dead = dispatcher(ring(evaluator=evaluator))
    message = signed(by=evaluator)
    forged = record_of(message, value=message.value.replace(b"production", b"staging"))
    assert await run.dispatch(forged) is Outcome.DEADLETTERED
    assert deps.handled == []
    [letter] = dead.events()
    assert isinstance(letter, DeadLetterRecordedV1)
    assert letter.error_kind is DeadLetterKind.FORGED


async def test_without_keys_the_dispatcher_verifies_nothing() -> None:
    run, deps, _ = dispatcher(None)
    assert await run.dispatch(record_of(signed(by=None))) is Outcome.HANDLED
    assert len(deps.handled) == 1


async def test_a_catch_all_handler_is_verified_too() -> None:
    # the audit's catch-all acts on some privileged events (a tenant erasure); a forgery reaches its
    # store only as the dead letter, which keeps the original bytes
    evaluator = signer()
    run, deps, dead = dispatcher(ring(evaluator=evaluator), catch_all=True)
    assert await run.dispatch(record_of(signed(by=None))) is Outcome.DEADLETTERED
    assert deps.handled == []
    assert [type(e) for e in dead.events()] == [DeadLetterRecordedV1]
    assert await run.dispatch(record_of(signed(by=evaluator))) is Outcome.HANDLED
    assert len(deps.handled) == 1


def test_a_dispatcher_refuses_to_start_when_signatures_are_required_without_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CAIRN_TRUSTED_KEYS_DIR", raising=False)
    monkeypatch.setenv("CAIRN_REQUIRE_SIGNATURES", "true")
    with pytest.raises(SigningConfigError):
        Dispatcher(promotion_router(), Deps(), InMemoryPublisher(), group_id=GROUP)
