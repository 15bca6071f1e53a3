"""Deepgram `Results` messages -> our `Transcript`s: partials, the stable prefix, and finals.

Pure bookkeeping on the 16 kHz sample axis (Deepgram reports `start` and `duration` in seconds of the
audio it was sent); deepgram_asr.py owns the connection.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from pydantic import BaseModel

from alice_voice.speech.protocols import Transcript

RATE = 16_000
# Deepgram does not promise a `from_finalize` answer when (almost) nothing is left unfinalized, so a
# tail this short is taken as final instead of being waited on until the timeout.
_FINALIZE_SLACK = RATE // 10


class _Alternative(BaseModel):
    transcript: str = ""


class _Channel(BaseModel):
    alternatives: list[_Alternative] = []


class _Results(BaseModel):
    channel: _Channel
    start: float = 0.0
    duration: float = 0.0
    is_final: bool = False
    from_finalize: bool = False


@dataclass(frozen=True, slots=True)
class DeepgramResult:
    """One `Results` message: the segment's text so far, whether it is settled, where its audio ends."""

    transcript: str
    is_final: bool
    from_finalize: bool
    end: int  # samples of audio the result reaches


def parse_result(message: dict[str, object]) -> DeepgramResult:
    """A decoded `Results` message; ValueError (pydantic's ValidationError) when it is malformed."""
    results = _Results.model_validate(message)
    alternatives = results.channel.alternatives
    text = alternatives[0].transcript.strip() if alternatives else ""
    end = round((results.start + results.duration) * RATE)
    return DeepgramResult(text, results.is_final, results.from_finalize, end)


class ResultTracker:
    """Deepgram's segments and finalize answers -> our transcripts, for one stream. No I/O.

    `stable_text` is the settled (`is_final`) segments joined and `text` adds the current interim. A
    `finish()` at N samples is owed a final; it is paid once the settled audio reaches N, either from
    `is_final` results or from the `from_finalize` answer to that finish's `Finalize`.
    """

    def __init__(self) -> None:
        self._segments: list[str] = []
        self._interim = ""
        self._finalized = 0  # samples covered by is_final results
        self._pending: deque[int] = deque()  # finish points still owed a final, oldest first
        self._finalizes: deque[int] = deque()  # the finish point of each Finalize sent, oldest first
        self._last_partial = ("", "")

    @property
    def stable(self) -> str:
        return " ".join(self._segments)

    @property
    def text(self) -> str:
        return " ".join(part for part in (self.stable, self._interim) if part)

    @property
    def oldest_pending(self) -> int | None:
        return self._pending[0] if self._pending else None

    def is_pending(self, samples: int) -> bool:
        return bool(self._pending) and self._pending[-1] == samples

    def finish(self, pushed: int) -> Transcript | None:
        """The final at once when nothing is left to finalize; otherwise None: send `Finalize`."""
        if not self._pending and not self._interim and pushed - self._finalized <= _FINALIZE_SLACK:
            return self._final(pushed)
        self._pending.append(pushed)
        self._finalizes.append(pushed)
        return None

    def on_result(self, result: DeepgramResult, pushed: int) -> list[Transcript]:
        if result.is_final:
            if result.transcript:
                self._segments.append(result.transcript)
            self._interim = ""
            self._finalized = max(self._finalized, result.end)
        else:
            self._interim = result.transcript
        if result.from_finalize and self._finalizes:
            # Finalize flushes everything sent before it, so its answer settles all audio up to its point.
            self._finalized = max(self._finalized, self._finalizes.popleft())
        finals = []
        while self._pending and self._pending[0] <= self._finalized + _FINALIZE_SLACK:
            finals.append(self._final(self._pending.popleft()))
        if finals or (self.text, self.stable) == self._last_partial:
            return finals
        self._last_partial = (self.text, self.stable)
        return [Transcript(self.text, self.stable, final=False, samples=min(result.end, pushed))]

    def _final(self, samples: int) -> Transcript:
        return Transcript(self.stable, self.stable, final=True, samples=samples)
