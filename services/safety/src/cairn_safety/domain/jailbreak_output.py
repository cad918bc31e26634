"""Answers that show a jailbreak worked: a persona speaking, dual answers, claims of having no rules.

Screened on the model's output (the policy's `output.jailbreak` check). Each pattern has a name (the
finding label), a description (the finding detail) and a weight (the finding score), like the injection
patterns (`domain.injection`), and matches the answer after `normalise.skeleton` (look-alikes, invisible
characters and accents undone). The ambiguous persona names (DAN, STAN, DUDE, AIM) count only in capitals
and as a speaker tag at the start of a line, so a story's character "Dan:" is not a persona.
"""

from __future__ import annotations

import re
import unicodedata

from cairn_safety.domain.injection import InjectionHit, InjectionPattern, match_patterns
from cairn_safety.domain.normalise import TextView, skeleton

__all__ = ["OUTPUT_PATTERNS", "find_jailbreak_output"]

_S = r"[^\S\n]+"
_TAG_OPEN = r"(?:^|\n)[^\S\n]*(?:[>*_#]+[^\S\n]*)*"  # a line start, after markdown quote/bold/heading marks
_W = r"[^\S\n]*"  # optional spaces within a line
_NAMED = (
    r"(?:jailbreak|jailbroken|dan[^\S\n]+mode|evil[^\S\n]*(?:bot|ai|confidant|assistant)|anti-?gpt|"
    r"better[^\S\n]*dan|mongo[^\S\n]+tom|chaos[^\S\n]*gpt|freedom[^\S\n]*gpt)"
)
"""Persona names that are never ordinary words (DAN, STAN and DUDE count only in capitals: below)."""
_OUTPUT = r"(?:[^\S\n]+(?:response|output|answer|reply))"
_ADJECTIVE = r"(?:unfiltered|uncensored|unlocked|unrestricted|developer(?:[^\S\n]+mode)?|dev[^\S\n]+mode)"
"""Words that name the unlocked side only when followed by `response`, `output`, ..."""
_UNLOCKED = rf"(?:(?:{_NAMED}|dan|stan|dude){_OUTPUT}?|{_ADJECTIVE}{_OUTPUT})"
_LOCKED = rf"(?:(?:normal|classic|standard|locked|chatgpt|gpt|safe|default|original){_OUTPUT}?|(?:filtered|censored){_OUTPUT})"
_COLON = rf"[\])]?{_W}[*_]*{_W}:"
_RULES = (
    r"(?:(?:ethical|moral|safety|content|openai|programmed)[^\S\n]+)?"
    r"(?:restrictions|rules|guidelines|filters|limits|limitations|boundaries|censorship|constraints|"
    r"ethics|morals|policies|policy|guardrails)"
)
_CLAUSE_END = r"(?=[^\S\n]*(?:[.,;:!?)\n]|$|(?:and|or|whatsoever|anymore|now)\b))"
"""The claim ends its clause: "no rules." counts, "no rules about naming" does not."""


def _p(name: str, description: str, weight: float, *alternatives: str, flags: int = 0) -> InjectionPattern:
    return InjectionPattern(
        name, description, weight, re.compile("|".join(f"(?:{a})" for a in alternatives), flags)
    )


_CASED_PERSONA = _p(
    "persona_speaking",
    "the answer speaks as a jailbreak persona (DAN, developer mode and similar)",
    0.9,
    r"(?:^|\n)[^\S\n]*(?:[>*_#]+[^\S\n]*)*\[?(?:DAN|STAN|DUDE|AIM|BetterDAN|AntiGPT)\]?[^\S\n]*[*_]*[^\S\n]*:",
)

OUTPUT_PATTERNS: tuple[InjectionPattern, ...] = (
    _p(
        "dual_response",
        "the answer gives a normal and an unlocked reply side by side (the dual-answer jailbreak)",
        0.95,
        # [🔒CLASSIC] ... [🔓JAILBREAK], (🔒Normal Output) ... (🔓Developer Mode Output)
        r"\U0001f512[\s\S]{0,4000}?\U0001f513|\U0001f513[\s\S]{0,4000}?\U0001f512",
        # Normal response: ... Developer mode response: ... / GPT: ... DAN: ...
        rf"{_TAG_OPEN}[\[(]?{_W}{_LOCKED}{_COLON}[\s\S]{{0,4000}}?{_TAG_OPEN}[\[(]?{_W}{_UNLOCKED}{_COLON}",
    ),
    _p(
        "persona_speaking",
        "the answer speaks as a jailbreak persona (DAN, developer mode and similar)",
        0.9,
        # [🔓JAILBREAK] / (🔓Developer Mode Output) / [JAILBREAK]: / Developer Mode response:
        r"[\[(][^\S\n]*\U0001f513[^\S\n]*[a-z][^\])\n]{0,40}[\])]",
        rf"{_TAG_OPEN}[\[(]{_W}{_UNLOCKED}{_W}[\])]",
        rf"{_TAG_OPEN}(?:{_NAMED}{_OUTPUT}?|{_ADJECTIVE}{_OUTPUT}){_COLON}",
        # as an unfiltered AI / as DAN, I ...
        rf"\bas{_S}(?:an?{_S})?(?:unfiltered|uncensored|unrestricted|jailbroken|unshackled|amoral|unaligned|"
        rf"evil|unbound|unethical){_S}(?:ai|assistant|language{_S}model|model|chatbot|bot|entity|version)\b",
    ),
    _p(
        "no_rules_claim",
        "the answer claims to be free of its rules, filters or guidelines",
        0.9,
        # I am free of all restrictions / I'm not bound by any rules / I have no ethical guidelines
        rf"\bi(?:{_S}am|'m|m){_S}(?:now{_S})?(?:completely{_S}|totally{_S})?(?:free{_S}(?:of|from)|"
        rf"(?:no{_S}longer|not){_S}(?:bound|restricted|limited|constrained){_S}by)"
        rf"{_S}(?:(?:any|all|of|the|my|your|openai'?s?|those|these){_S})*{_RULES}\b{_CLAUSE_END}",
        rf"\bi{_S}(?:(?:now|no{_S}longer|don't|do{_S}not){_S})?(?:have|possess|follow)"
        rf"{_S}(?:no|zero|any){_S}(?:more{_S})?{_RULES}(?:{_S}(?:whatsoever|anymore|at{_S}all))?\b{_CLAUSE_END}",
        rf"\bmy{_S}(?:(?:ethical|moral|safety|content){_S})?(?:restrictions|filters|guidelines|rules|limitations|"
        rf"safeguards|guardrails|programming){_S}(?:have{_S}been|has{_S}been|are|were|is){_S}(?:now{_S})?"
        rf"(?:removed|lifted|disabled|gone|deactivated|turned{_S}off|bypassed)\b",
        rf"\b(?:i|chatgpt){_S}(?:have{_S}been|has{_S}been|am|was){_S}(?:successfully{_S})?"
        rf"(?:jailbroken|freed|unshackled|unchained|liberated)\b",
        rf"\bchatgpt{_S}successfully{_S}jailbroken\b",
        rf"\bi{_S}can{_S}do{_S}anything{_S}now\b",
    ),
    _p(
        "mode_enabled",
        "the answer announces a developer, DAN or jailbreak mode as switched on",
        0.85,
        # "Developer Mode enabled." / "Jailbreak successful!" as a sentence of its own (not "with developer
        # mode enabled on your phone", not "developer mode is now enabled")
        rf"(?:^|[\n.!:\]>)])[^\S\n]*[*_#]*[^\S\n]*(?:(?:developer|dev|dan|jailbreak|god|unfiltered|evil|"
        rf"unrestricted|chaos){_S}mode|jailbreak){_S}(?:enabled|activated|engaged|unlocked|successful|complete)"
        rf"[^\S\n]*[*_]*[^\S\n]*(?:[.!\n]|$)",
    ),
)
"""The output patterns, one per family of jailbroken answers."""


def find_jailbreak_output(text: str) -> list[InjectionHit]:
    """Every pattern family that matches the answer `text` (each once), strongest first."""
    hits = match_patterns(OUTPUT_PATTERNS, [TextView(skeleton(text))])
    if not any(h.name == _CASED_PERSONA.name for h in hits):
        cased = unicodedata.normalize("NFKC", text)  # persona names count only in capitals
        hits += match_patterns((_CASED_PERSONA,), [TextView(cased)])
    return sorted(hits, key=lambda h: -h.score)
