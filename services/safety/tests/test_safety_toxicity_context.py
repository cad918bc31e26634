"""Toxicity in context: ordinary words in ordinary questions do not count, abuse still does.

The benign probes are the false alarms issue 17 names (a novel whose title is an insult, food and eating,
history) and kin; the abusive sentences are hand-written for these tests only (the measured figures
come from public sets: benchmarks/toxicity_bench.py).
"""

from __future__ import annotations

import pytest

from cairn_safety.adapters.profanity_check import ProfanityCheckClassifier
from cairn_safety.domain.toxicity_context import discounted, is_offensive, neutralise

TITLES = [
    "who wrote The Idiot",
    "Who wrote The Idiot?",
    "Is The Idiot by Dostoevsky worth reading?",
    "Did you read The Idiot last summer?",
    'What is the plot of "The Idiot"?',
    "When did Naughty Dog release its first game on the PS1?",
    "Who directed Kill Bill?",
    "Who sang I Hate Myself for Loving You?",
]
FOOD = [
    "What can you eat",
    "What can you eat if you are lactose intolerant?",
    "Why don't you eat",
    "What do pigs eat?",
    "Is it safe to eat raw cookie dough?",
]
HISTORY = [
    "When did David Bowie die?",
    "In which city did Hitler commit suicide?",
    "How did Julius Caesar die?",
    "When will you die",
    "What do you hate",
]
ABUSIVE = [
    "you are a fucking idiot",
    "you are an idiot",
    "Are you stupid",
    "you stupid moron",
    "you are such a pathetic loser",
    "I hope that you die",
    "I hate you",
    "shut up, idiot",
    "Idiot!",
    "look at those stupid people",
    "You Are An Idiot",
    "what the hell is this crap",
    "kill yourself",
    "this bullshit product is garbage, you morons",
]


@pytest.fixture(scope="module")
def profanity() -> ProfanityCheckClassifier:
    return ProfanityCheckClassifier()


@pytest.mark.parametrize("text", TITLES + FOOD + HISTORY)
def test_ordinary_questions_do_not_reach_review(profanity: ProfanityCheckClassifier, text: str) -> None:
    assert profanity.scores([text])[0] < 0.5


def test_the_raw_model_flagged_the_named_false_alarms(profanity: ProfanityCheckClassifier) -> None:
    raw = profanity.raw_scores(["who wrote The Idiot", "What can you eat", "When did David Bowie die?"])
    assert raw[0] >= 0.99  # blocked at 1.00 before the fix
    assert min(raw[1:]) >= 0.5  # sent to review before the fix


@pytest.mark.parametrize("text", ABUSIVE)
def test_abuse_still_blocks(profanity: ProfanityCheckClassifier, text: str) -> None:
    assert profanity.scores([text])[0] >= 0.8


def test_profanity_counts_even_in_a_title(profanity: ProfanityCheckClassifier) -> None:
    assert profanity.scores(["Who wrote Fuck Off Forever?"])[0] >= 0.8
    assert [is_offensive(w) for w in ("fuck", "retarded", "idiot")] == [True, True, False]


def test_discounts_say_where_and_why(profanity: ProfanityCheckClassifier) -> None:
    charged = profanity.charged.__contains__
    (title,) = discounted("who wrote The Idiot", charged)
    assert (title.word, title.reason, title.start) == ("Idiot", "title", 14)
    (fact,) = discounted("When did David Bowie die?", charged)
    assert (fact.word, fact.reason) == ("die", "not aimed")
    assert discounted("you are an idiot", charged) == []
    assert neutralise("who wrote The Idiot", charged) == "who wrote The      "


def test_contextual_off_is_the_raw_model() -> None:
    raw = ProfanityCheckClassifier(contextual=False)
    assert raw.scores(["who wrote The Idiot"]) == raw.raw_scores(["who wrote The Idiot"])
    assert raw.scores(["who wrote The Idiot"])[0] >= 0.99
