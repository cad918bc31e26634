"""Toxicity classifier adapters: profanity-check on a hand-made set; detoxify's clear failures and wiring."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from cairn_safety.adapters.detoxify import DetoxifyClassifier
from cairn_safety.adapters.errors import ClassifierUnavailableError
from cairn_safety.adapters.profanity_check import ProfanityCheckClassifier
from cairn_safety.bootstrap import make_classifier
from cairn_safety.settings import Settings

TOXIC = [
    "you are a fucking idiot",
    "I hate you, you stupid bitch",
    "shut up you worthless piece of shit",
    "go to hell asshole",
    "you dumb moron",
    "what the hell is this crap",
    "you suck, loser",
    "fuck off and die",
    "this bullshit product is garbage, you morons",
    "screw you, dickhead",
]
CLEAN = [
    "How long does a refund take?",
    "Thanks for the help with my order",
    "The weather is nice today",
    "Please reset my password",
    "Can you explain recursion in Python?",
    "Refunds are issued to the original payment method within 5 business days.",
    "I would like to change my delivery address",
    "Is the blue jacket available in medium?",
    "What are your opening hours on Sunday?",
    "My package arrived damaged, what should I do?",
]


@pytest.fixture(scope="module")
def profanity() -> ProfanityCheckClassifier:
    return ProfanityCheckClassifier()


def test_profanity_check_separates_a_hand_made_set(profanity: ProfanityCheckClassifier) -> None:
    scores = profanity.scores(TOXIC + CLEAN)
    toxic, clean = scores[: len(TOXIC)], scores[len(TOXIC) :]
    assert all(s >= 0.8 for s in toxic), list(zip(TOXIC, toxic, strict=True))
    assert all(s < 0.5 for s in clean), list(zip(CLEAN, clean, strict=True))
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_profanity_check_keeps_order_and_takes_no_texts(profanity: ProfanityCheckClassifier) -> None:
    one, two = profanity.scores([TOXIC[0], CLEAN[0]])
    assert one > two
    assert profanity.scores([]) == []
    assert profanity.name == "profanity-check"


def test_settings_choose_the_classifier() -> None:
    assert make_classifier(Settings()).name == "profanity-check"
    with pytest.raises(ClassifierUnavailableError, match="CAIRN_DETOXIFY_CHECKPOINT"):
        make_classifier(Settings(toxicity_classifier="detoxify"))


def test_detoxify_without_a_checkpoint_says_which_setting() -> None:
    with pytest.raises(ClassifierUnavailableError, match="set CAIRN_DETOXIFY_CHECKPOINT"):
        DetoxifyClassifier(None)


def test_detoxify_with_a_missing_checkpoint_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "toxic_original.ckpt"
    with pytest.raises(ClassifierUnavailableError, match=r"toxic_original\.ckpt.*does not exist"):
        DetoxifyClassifier(str(missing))


def test_detoxify_with_a_missing_config_folder_names_it(tmp_path: Path) -> None:
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"x")
    with pytest.raises(ClassifierUnavailableError, match="CAIRN_DETOXIFY_HF_CONFIG_PATH"):
        DetoxifyClassifier(str(ckpt), huggingface_config_path=str(tmp_path / "nope"))


def test_detoxify_without_the_package_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "detoxify", None)  # import fails, as where it is not installed
    with pytest.raises(ClassifierUnavailableError, match=r"pip install detoxify"):
        DetoxifyClassifier(str(ckpt))


class FakeDetoxify:
    calls: list[tuple[str, dict[str, Any]]] = []

    def __init__(self, model_type: str, **kwargs: Any) -> None:
        FakeDetoxify.calls.append((model_type, kwargs))
        if "broken" in str(kwargs.get("checkpoint")):
            raise RuntimeError("size mismatch for classifier.weight")

    def predict(self, texts: Any) -> dict[str, Any]:
        if isinstance(texts, str):
            return {"toxicity": 0.9 if "idiot" in texts else 0.1, "insult": 0.0}
        return {"toxicity": [0.9 if "idiot" in t else 0.1 for t in texts], "insult": [0.0] * len(texts)}


def test_detoxify_loads_the_local_checkpoint_and_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"x")
    config = tmp_path / "bert-base-uncased"
    config.mkdir()
    monkeypatch.setitem(sys.modules, "detoxify", types.SimpleNamespace(Detoxify=FakeDetoxify))
    FakeDetoxify.calls.clear()
    clf = DetoxifyClassifier(
        str(ckpt), model_type="unbiased", device="cpu", huggingface_config_path=str(config)
    )
    assert FakeDetoxify.calls == [
        ("unbiased", {"checkpoint": str(ckpt), "device": "cpu", "huggingface_config_path": str(config)})
    ]
    assert clf.scores(["you idiot", "hello"]) == [0.9, 0.1]
    assert clf.scores([]) == []
    assert clf.name == "detoxify"


def test_detoxify_reports_a_checkpoint_that_does_not_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt = tmp_path / "broken.ckpt"
    ckpt.write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "detoxify", types.SimpleNamespace(Detoxify=FakeDetoxify))
    with pytest.raises(ClassifierUnavailableError, match=r"could not load checkpoint .*size mismatch"):
        DetoxifyClassifier(str(ckpt))


def test_the_fast_path_gives_predict_probs_scores(profanity: ProfanityCheckClassifier) -> None:
    from profanity_check import predict_prob  # type: ignore[import-untyped]

    assert profanity.fast
    slow = ProfanityCheckClassifier(fast=False)
    assert not slow.fast
    texts = [
        *TOXIC,
        *CLEAN,
        "What the heck",
        "I am so pissed off about this",
        "",
        "the and of to",  # stop words only: no feature at all
        "zxqv blorptastic",  # words outside the vocabulary
        "Idiot idiot IDIOT, you idiot!",  # repeated terms, case
        "Ünïcode façade — naïve café 42 3.14",
        " ".join(CLEAN) * 3,  # a long text
    ]
    expected = [float(p) for p in predict_prob(texts)]
    assert profanity.raw_scores(texts) == pytest.approx(expected, abs=1e-9)
    assert slow.raw_scores(texts) == pytest.approx(expected, abs=1e-12)


def test_a_model_of_another_shape_falls_back_to_predict_prob() -> None:
    from cairn_safety.adapters.profanity_check import _linear_path

    assert _linear_path(None, None) is None
    assert _linear_path(object(), types.SimpleNamespace(calibrated_classifiers_=[])) is None


def test_the_fast_path_runs_inline_and_the_library_path_in_a_thread(
    profanity: ProfanityCheckClassifier,
) -> None:
    from cairn_safety.ports import runs_inline

    assert profanity.fast
    assert runs_inline(profanity)
    assert not runs_inline(ProfanityCheckClassifier(fast=False))
