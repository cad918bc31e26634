"""Prompt references: `name`, `name@label`, `name:version`."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cairn_events.base import PROMPT_REF_PATTERN
from cairn_prompt_store.domain.errors import InvalidReferenceError
from cairn_prompt_store.domain.refs import PromptRef, check_label, parse_ref


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("qa", PromptRef("qa", label="production")),
        ("qa@staging", PromptRef("qa", label="staging")),
        ("qa:3", PromptRef("qa", version=3)),
        ("support/answer@canary-2", PromptRef("support/answer", label="canary-2")),
        ("a.b_c-d:123456789", PromptRef("a.b_c-d", version=123456789)),
    ],
)
def test_references_parse(text: str, expected: PromptRef) -> None:
    assert parse_ref(text) == expected


@pytest.mark.parametrize(
    "text", ["", "qa@", "qa:", "qa:0", "qa:01", "qa@x:1", "-qa", "qa@-x", "q a", "qa:1234567890"]
)
def test_malformed_references_are_refused(text: str) -> None:
    with pytest.raises(InvalidReferenceError, match="invalid prompt reference"):
        parse_ref(text)


def test_str_of_a_reference_parses_back() -> None:
    assert str(parse_ref("qa")) == "qa@production"
    assert str(parse_ref("qa:7")) == "qa:7"


@pytest.mark.parametrize("label", ["1", "007", "", "-x", "a" * 65, "has space"])
def test_bad_labels_are_refused(label: str) -> None:
    with pytest.raises(InvalidReferenceError):
        check_label(label)


def test_good_labels_pass() -> None:
    assert check_label("production") == "production"
    assert check_label("canary.v2_b-1") == "canary.v2_b-1"


_REF = re.compile(PROMPT_REF_PATTERN)
names = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._/-]{0,20}\Z")
labels = st.from_regex(r"\A[A-Za-z][A-Za-z0-9._-]{0,10}\Z")


@given(name=names, label=labels, version=st.integers(1, 999_999_999))
def test_parsing_round_trips(name: str, label: str, version: int) -> None:
    assert parse_ref(f"{name}@{label}") == PromptRef(name, label=label)
    assert parse_ref(f"{name}:{version}") == PromptRef(name, version=version)
    assert parse_ref(str(parse_ref(name))) == parse_ref(name)


@given(st.text(max_size=40))
def test_parsing_anything_either_works_or_says_why(text: str) -> None:
    if _REF.match(text):
        ref = parse_ref(text)
        assert ref.name
        assert (ref.label is None) != (ref.version is None)
    else:
        with pytest.raises(InvalidReferenceError, match="invalid prompt reference"):
            parse_ref(text)
