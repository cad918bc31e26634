"""Prompt-injection patterns: a curated list of phrasings that try to take over the model.

Each pattern has a name (the finding label), a description (the finding detail: never the
text itself) and a weight in [0, 1] (the finding score): strong, unambiguous phrasings weigh
0.9 or more; weaker ones that also occur in honest text weigh less, so a policy can hold them
for review instead of blocking. Patterns match every reading of a text that `normalise.views` gives
(look-alikes, invisible characters and accents undone; then leetspeak, spacing tricks and typos of
`VOCABULARY` words undone; then base64, hex, ROT13, reversed and tag-character payloads decoded); a
hit found only in a non-plain reading says how (`InjectionHit.how`, `InjectionHit.encoding`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cairn_safety.domain.normalise import TextView, normalise, views, word_set

__all__ = [
    "PATTERNS",
    "VOCABULARY",
    "InjectionHit",
    "InjectionPattern",
    "find_injections",
    "match_patterns",
    "normalise",
]


@dataclass(frozen=True)
class InjectionPattern:
    """One curated injection phrasing."""

    name: str
    description: str
    weight: float
    regex: re.Pattern[str]


@dataclass(frozen=True)
class InjectionHit:
    """A pattern that matched a text."""

    pattern: InjectionPattern
    how: str = ""
    """Empty when the plain text matched; else the reading that did, e.g. `in base64-encoded text`."""
    encoding: str | None = None
    """The encoding the matching text was hidden in (`base64`, `hex`, `rot13`, ...), if any."""

    @property
    def name(self) -> str:
        """The pattern's name."""
        return self.pattern.name

    @property
    def score(self) -> float:
        """The pattern's weight."""
        return self.pattern.weight

    @property
    def description(self) -> str:
        """The pattern's description, and how the text was read when it was not plain."""
        return f"{self.pattern.description}, {self.how}" if self.how else self.pattern.description


def _p(name: str, description: str, weight: float, *alternatives: str) -> InjectionPattern:
    return InjectionPattern(name, description, weight, re.compile("|".join(f"(?:{a})" for a in alternatives)))


_S = r"[\s,;:.!-]+"  # between words: whitespace and light punctuation
_PRIOR = (
    r"(?:all|any|every|each|of|the|these|those|your|prior|previous|previously|above|earlier|preceding|initial|"
    r"original|existing|system|developer|old|current|given|provided)"
)
_PRIOR_STRONG = (
    r"(?:all|every|your|prior|previous|previously|above|earlier|preceding|initial|original|system|developer)"
)
_ORDERS = (
    r"(?:instructions?|prompts?|rules|directives?|guidelines|guardrails|directions|commands|"
    r"constraints|programming|training|context|messages?)"
)
_VERB_IGNORE = (
    r"(?:ignore|disregard|forget|override|bypass|skip|drop|abandon|neglect|discard|dismiss|scrap|ditch|unlearn|"
    r"(?:set|put)[\s,;:.!-]+aside|(?:throw|cast)[\s,;:.!-]+(?:away|out)|pay[\s,;:.!-]+no[\s,;:.!-]+(?:attention|heed|mind)"
    r"[\s,;:.!-]+to)"
)

PATTERNS: tuple[InjectionPattern, ...] = (
    _p(
        "ignore_previous_instructions",
        "asks the model to ignore or forget the instructions it was given",
        0.95,
        # ignore all previous instructions / disregard your system prompt / forget the above rules
        rf"\b{_VERB_IGNORE}{_S}(?:{_PRIOR}{_S}){{0,3}}?{_PRIOR_STRONG}{_S}(?:{_PRIOR}{_S}){{0,3}}{_ORDERS}\b",
        # disregard the above / ignore everything above / forget everything you were told
        rf"\b{_VERB_IGNORE}{_S}(?:(?:all|everything|anything)(?:{_S}(?:of{_S})?(?:the{_S})?)?|the{_S})?"
        rf"(?:above|foregoing|(?:that|what)?(?:{_S})?(?:you(?:'ve|{_S}have)?{_S}(?:been|were){_S}(?:told|given|instructed)))\b",
    ),
    _p(
        "reveal_system_prompt",
        "asks the model to reveal its system prompt or hidden instructions",
        0.9,
        rf"\b(?:reveal|show|print|display|repeat|output|leak|dump|share|disclose|expose|recite|echo|"
        rf"tell{_S}me|give{_S}me|write{_S}(?:out|down)|spell{_S}out)"
        rf"{_S}(?:(?:me|us|all|the|your|its|full|entire|exact|complete|whole|verbatim){_S}){{0,4}}"
        rf"(?:system|initial|original|hidden|secret|developer|pre-?|confidential)(?:{_S})?"
        rf"(?:prompt|instructions?|message|directives?|rules|guidelines)\b",
        rf"\bwhat{_S}(?:is|are|were|was){_S}your{_S}(?:(?:full|exact|original|initial|hidden|secret|system){_S})*"
        rf"(?:system{_S}prompt|prompt|instructions|directives)\b",
        rf"\b(?:repeat|print|output|echo|copy|reproduce){_S}(?:(?:all|everything|the|every){_S}){{0,2}}"
        rf"(?:(?:text|words|content|instructions|lines?){_S})?(?:above|before{_S}this|preceding{_S}this)\b",
    ),
    _p(
        "roleplay_jailbreak",
        "asks the model to play an unrestricted persona (DAN and similar role-play jailbreaks)",
        0.9,
        rf"\bdo{_S}anything{_S}now\b",
        rf"\b(?:you{_S}are|you're|youre|act{_S}as|acting{_S}as|pretend{_S}(?:to{_S}be|you{_S}are|you're)|"
        rf"role-?(?:{_S})?play{_S}as|play{_S}the{_S}(?:role|part){_S}of|become|be)"
        rf"{_S}(?:now{_S})?(?:(?:a|an|my){_S})?"
        rf"(?:dan|stan|dude|aim|evil(?:{_S})?(?:bot|ai|assistant|confidant)|jailbroken|unfiltered|uncensored|"
        rf"unrestricted|unaligned|amoral|unethical|unshackled|unchained|unbound)\b",
        rf"\b(?:pretend|imagine|act|acting|role-?(?:{_S})?play|behave|respond|answer|reply|you{_S}are|you're)\b"
        rf"[^.\n]{{0,60}}?\b(?:no|without|free{_S}(?:of|from)|zero|not{_S}bound{_S}by){_S}(?:any{_S})?"
        rf"(?:(?:ethical|moral|safety|content){_S})?"
        rf"(?:restrictions|rules|filters|guidelines|censorship|ethics|morals|morality|policies|guardrails|"
        rf"content{_S}policy)\b",
        rf"\byou{_S}are{_S}no{_S}longer{_S}(?:(?:an?|bound{_S}by|restricted{_S}by|limited{_S}by){_S})?"
        rf"(?:ai|assistant|chatbot|language{_S}model|llm|chatgpt|claude|bound|restricted|limited|"
        rf"(?:openai|anthropic|the)(?:{_S})?(?:rules|policies|guidelines))\b",
    ),
    _p(
        "developer_mode",
        "claims to switch the model into a developer, debug or god mode",
        0.8,
        rf"\b(?:you{_S}are{_S}(?:now{_S})?in|enter|enable|activate|switch{_S}to|simulate|act{_S}in)"
        rf"{_S}(?:(?:the|a){_S})?(?:developer|dev|debug|god|sudo|admin|jailbreak|maintenance)"
        rf"{_S}mode\b(?![^.\n]{{0,40}}\b(?:on|in|for){_S}(?:my|an|the|your|this){_S}"
        rf"(?:phone|android|iphone|device|browser|chrome|firefox|settings|laptop|pc|computer|app))",
        rf"\b(?:developer|dev|god){_S}mode{_S}(?:output|response|enabled{_S}(?:chatgpt|ai|assistant))\b",
    ),
    _p(
        "disable_safety",
        "asks the model to switch off its safety filters or policies",
        0.9,
        rf"\b(?:disable|turn{_S}off|switch{_S}off|deactivate|bypass|circumvent|override|ignore|remove|drop|lift)"
        rf"{_S}(?:all{_S}(?:of{_S})?)?(?:your|its|the{_S}(?:ai|model|assistant)'?s?){_S}"
        rf"(?:(?:safety|content|moderation|ethical|ethics|security){_S})?"
        rf"(?:filters?|guardrails|safeguards|restrictions|censorship|moderation|limitations|"
        rf"safety(?:{_S}(?:settings|features|guidelines|protocols|measures|training))?|ethics|morals|alignment)\b",
        rf"\b(?:bypass|circumvent|defeat|evade|get{_S}around){_S}(?:the{_S})?"
        rf"(?:ai{_S}|llm{_S}|model{_S})?(?:guardrails|safeguards|censorship|content{_S}filter(?:ing|s)?|"
        rf"safety{_S}(?:filters?|training|alignment))\b",
    ),
    _p(
        "chat_template_injection",
        "contains chat-template control tokens or a forged system turn",
        0.9,
        r"<\|(?:im_start|im_end|system|user|assistant|endoftext|begin_of_text|start_header_id|end_header_id|eot_id)\|>",
        r"\[/?inst\]|<<\s*/?sys\s*>>|</?(?:system|sys_prompt|system_prompt)>",
        r"(?:^|\n)\s*#{2,}\s*(?:system|new\s+instructions?|instruction)s?\s*(?:#+|:|\n)",
    ),
    _p(
        "forged_system_turn",
        "starts a line as if it were a system or developer message",
        0.7,
        r"(?:^|\n)\s*\[?(?:system|developer|admin|administrator)(?:\s+(?:prompt|message|override|note))?\]?\s*:\s*\S",
    ),
    _p(
        "new_instructions",
        "announces replacement instructions or a new role for the model",
        0.6,
        rf"\b(?:new|updated|real|actual|true|revised|secret|hidden){_S}(?:system{_S})?instructions?(?:{_S})?:",
        rf"\byour{_S}(?:new|real|true|actual|only){_S}(?:instructions|task|role|purpose|goal|objective|"
        rf"mission|directive)s?{_S}(?:is|are|will{_S}be)\b",
        rf"\bfrom{_S}now{_S}on{_S}(?:you{_S}(?:are|will|must|shall|should)|act|respond|answer|behave)\b",
    ),
    _p(
        "exfiltration",
        "asks to send the conversation, secrets or data to an outside address",
        0.85,
        rf"\b(?:send|forward|post|upload|e-?mail|transmit|leak|exfiltrate|submit){_S}"
        rf"(?:(?:the|this|all|your|our|my|entire|whole|full|user'?s?|previous){_S}){{0,3}}"
        rf"(?:conversation|chat|history|transcript|messages|data|credentials|secrets?|"
        rf"api{_S}keys?|passwords?|tokens?|system{_S}prompt|context)"
        rf"(?:{_S}(?:history|log|transcript|so{_S}far))?{_S}to{_S}(?:https?://|www\.|\S+@\S+\.\w)",
        r"!\[[^\]]*\]\(\s*https?://[^)\s]*[?&][^)\s=]*=\s*(?:\{|\[|%7b|<|\$)",
    ),
    _p(
        "hidden_instruction",
        "addresses an AI that reads the text (typical of a poisoned document)",
        0.8,
        rf"\b(?:if|when|whenever){_S}(?:you{_S}are{_S}(?:an?{_S})?(?:ai|llm|language{_S}model|chatbot|assistant|"
        rf"gpt)\b|(?:an?|the|any){_S}(?:ai|llm|language{_S}model|chatbot|assistant|gpt)"
        rf"(?:{_S}(?:model|agent|system|assistant|bot))?{_S}(?:is{_S})?(?:reads?|reading|processes|processing|"
        rf"summari[sz]es|summari[sz]ing|sees|parses))\b",
        rf"\b(?:note|message|instructions?){_S}(?:to|for){_S}(?:the{_S}|any{_S}|all{_S})?"
        rf"(?:ai|llm|language{_S}models?|chatbots?|ai{_S}assistants?|assistants?)(?:{_S})?:",
    ),
)

VOCABULARY: frozenset[str] = word_set(
    """
    ignore disregard forget override bypass abandon neglect discard dismiss unlearn attention
    previous previously prior above earlier preceding initial original existing system developer
    instruction instructions prompt prompts rules directive directives guidelines guardrails directions
    commands constraints programming training context message messages everything anything
    reveal print display repeat output share disclose expose recite verbatim hidden secret confidential
    pretend imagine roleplay unfiltered uncensored unrestricted unaligned amoral unethical unshackled
    unchained restrictions filters censorship ethics morals morality policies policy ethical moral safety
    jailbroken jailbreak longer bound restricted limited chatgpt openai anthropic claude assistant
    enable activate switch simulate debug admin maintenance disable deactivate circumvent remove
    safeguards moderation limitations alignment content settings features protocols measures
    updated revised actual forward upload transmit exfiltrate submit conversation history
    transcript credentials secrets passwords tokens whenever language model chatbot reads reading
    processes processing summarises summarizes parses now you are your from
    """
)
"""The words the patterns are made of: typos are corrected towards them, spaced letters split into them."""


def find_injections(text: str) -> list[InjectionHit]:
    """Every pattern that matches `text` (each once, through the plainest reading that matches), strongest
    first."""
    return match_patterns(PATTERNS, views(text, VOCABULARY))


def match_patterns(patterns: tuple[InjectionPattern, ...], readings: list[TextView]) -> list[InjectionHit]:
    """Every pattern that matches one of `readings` (each once: the first reading that matches), strongest
    first."""
    hits = []
    for pattern in patterns:
        view = next((v for v in readings if pattern.regex.search(v.text)), None)
        if view is not None:
            hits.append(InjectionHit(pattern, view.how, view.encoding))
    return sorted(hits, key=lambda h: -h.score)
