"""Streaming a generation as deltas: which text may go out while the model still generates.

A streaming backend reports the text generated so far after each step (`Progress`); the
`DeltaChunker` turns those reports into deltas, batched (every `every_tokens` tokens or `every_s`
seconds, whichever comes first) so that a request yields a handful of events, not one per token.
It only lets out text that the final completion will still begin with: it never sends a trailing
U+FFFD (half of a multi-byte character the tokenizer has not finished), and it holds back the last
`len(longest stop string) - 1` characters, which may be the start of a stop string that the final
text cuts off. The rest of the text goes out in the last delta (`finish`).

Which backend streams: a backend reads `current_progress()` while it generates and calls it with
the text so far; one that does not (a non-streaming HTTP call, the instant backend) never calls it,
and its whole text goes out in the last delta.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from cairn_inference.domain.stops import find_stop

__all__ = ["DeltaChunker", "Progress", "current_progress", "reporting_to"]

Progress = Callable[[str, int], None]
"""Called by a streaming backend with (the text generated so far, the tokens generated so far);
from any thread."""

_PROGRESS: ContextVar[Progress | None] = ContextVar("cairn_inference_progress", default=None)


def current_progress() -> Progress | None:
    """Where the generation running in this context reports its progress; None when nobody streams it."""
    return _PROGRESS.get()


@contextmanager
def reporting_to(progress: Progress | None) -> Iterator[None]:
    """Within the block, generations started in this context report their progress to `progress`."""
    token = _PROGRESS.set(progress)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


@dataclass
class DeltaChunker:
    """Decides the deltas of one generation from its progress reports (see the module docstring)."""

    stops: Sequence[str] = ()
    every_tokens: int = 8
    every_s: float = 0.25
    sent: str = ""
    """The text already given out, in order."""
    index: int = 0
    """How many deltas were given out."""
    _tokens_at_last: int = 0
    _last_at: float | None = field(default=None, repr=False)

    def stable(self, text: str) -> str:
        """The part of `text` (generated so far) the final text is sure to begin with."""
        cut = len(text)
        while cut and text[cut - 1] == "\ufffd":
            cut -= 1
        text = text[:cut]
        found = find_stop(text, self.stops)
        if found is not None:  # the text ends here: nothing more to hold back
            return text[:found]
        hold = max((len(s) for s in self.stops if s), default=1) - 1
        return text[: len(text) - hold] if hold else text

    def offer(self, text: str, tokens: int, now: float) -> str | None:
        """The next delta's text, when a batch is due and there is new stable text; else None."""
        if self._last_at is None:
            self._last_at = now
        due = tokens - self._tokens_at_last >= self.every_tokens or now - self._last_at >= self.every_s
        if not due:
            return None
        ready = self.stable(text)
        if len(ready) <= len(self.sent) or not ready.startswith(self.sent):
            return None
        piece = ready[len(self.sent) :]
        self.sent = ready
        self.index += 1
        self._tokens_at_last, self._last_at = tokens, now
        return piece

    def finish(self, final_text: str) -> tuple[int, str]:
        """The last delta's (offset, text): the rest of `final_text` after what was sent; or, when
        the final text does not begin with what was sent (a correct backend never causes it), all of
        it at offset 0, which a consumer holding more text reads as a repeat and skips."""
        self.index += 1
        if final_text.startswith(self.sent):
            offset, rest = len(self.sent), final_text[len(self.sent) :]
        else:
            offset, rest = 0, final_text
        self.sent = final_text
        return offset, rest
