"""Every service's real subscriptions and publications match the topic files, in both directions.

`cairn_bus.contract.service_contracts()` reads them from the routers the services run, so a
service cannot start consuming or publishing something its topic files do not declare (or
the reverse) without this failing. `upstream` (systems outside Cairn, the `cairn` CLI) is
declared in topic files but has no contract to check.

A shadow topic (`shadow_of`) is written by whoever writes its primary topic: the publisher sends
an event of a replay or shadow trail there instead (`cairn_bus.publisher.destination`), so every
(primary, type) a service produces counts as (shadow, type) too.
"""

from __future__ import annotations

import pytest

from cairn_bus.contract import ServiceContract, service_contracts
from cairn_events import EVENT_TYPES
from cairn_events.topics import EXTERNAL, SERVICES, TopicFile

Pair = tuple[str, str]


@pytest.fixture(scope="module")
def contracts(topic_files: dict[str, TopicFile]) -> dict[str, ServiceContract]:
    found = service_contracts()
    assert found, "no service contracts found: are the services installed (cairn.services entry points)?"
    shadows = {topic.shadow_of: name for name, topic in topic_files.items() if topic.shadow_of}
    return {
        name: ServiceContract(
            c.service,
            c.consumes,
            c.produces | {(shadows[topic], t) for topic, t in c.produces if topic in shadows},
        )
        for name, c in found.items()
    }


def test_a_shadow_topic_has_its_primarys_producers_and_types(topic_files: dict[str, TopicFile]) -> None:
    shadows = [topic for topic in topic_files.values() if topic.shadow_of]
    assert [topic.name for topic in shadows] == ["cairn.responses.shadow"]
    for shadow in shadows:
        assert shadow.shadow_of is not None
        primary = topic_files[shadow.shadow_of]
        assert sorted(shadow.producers) == sorted(primary.producers), shadow.name
        assert shadow.event_types == primary.event_types, shadow.name
        assert shadow.key.field == primary.key.field, shadow.name


def test_services_are_the_ones_topic_files_know(contracts: dict[str, ServiceContract]) -> None:
    assert set(contracts) <= set(SERVICES), f"unknown services: {sorted(set(contracts) - set(SERVICES))}"
    for name, contract in contracts.items():
        assert contract.service == name


@pytest.mark.parametrize("direction", ["consumes", "produces"])
def test_what_services_do_is_declared(
    contracts: dict[str, ServiceContract], topic_files: dict[str, TopicFile], direction: str
) -> None:
    problems = []
    for name, contract in sorted(contracts.items()):
        pairs: frozenset[Pair] = getattr(contract, direction)
        for topic_name, event_type in sorted(pairs):
            topic = topic_files.get(topic_name)
            if topic is None:
                problems.append(f"{name} {direction} {event_type} on {topic_name}, which has no topic file")
                continue
            if event_type not in {entry.type for entry in topic.event_types}:
                problems.append(
                    f"{name} {direction} {event_type} on {topic_name}, which does not list that type"
                )
            if event_type not in EVENT_TYPES:
                problems.append(f"{name} {direction} {event_type}, which cairn-events does not register")
            parties = topic.consumers if direction == "consumes" else topic.producers
            if name not in parties:
                role = "consumers" if direction == "consumes" else "producers"
                problems.append(f"{name} {direction} {topic_name} but is not in its {role}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("direction", ["consumes", "produces"])
def test_what_topic_files_declare_is_done(
    contracts: dict[str, ServiceContract], topic_files: dict[str, TopicFile], direction: str
) -> None:
    problems = []
    for topic_name, topic in sorted(topic_files.items()):
        parties = topic.consumers if direction == "consumes" else topic.producers
        for name in parties:
            if name == EXTERNAL:
                continue
            contract = contracts.get(name)
            pairs: frozenset[Pair] = getattr(contract, direction) if contract else frozenset()
            if not any(pair_topic == topic_name for pair_topic, _ in pairs):
                problems.append(
                    f"{topic_name} names {name} but {name} does not {direction[:-1]} anything on it"
                )
    assert not problems, "\n".join(problems)


def test_audit_consumes_every_registered_event_type(contracts: dict[str, ServiceContract]) -> None:
    audit = contracts.get("audit")
    if audit is None:
        pytest.skip("the audit service is not installed")
    expected = {(event_cls.topic, event_type) for event_type, event_cls in EVENT_TYPES.items()}
    # and the shadow copies: the answers of replays and shadow requests are in the trail too
    expected.add(("cairn.responses.shadow", "cairn.response.completed.v1"))
    assert audit.consumes == expected
