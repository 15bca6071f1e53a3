"""The caller's utterance as the recognizer hears it: one ASR stream, the frames fed to it, the final
asked for, and the words it goes on from. Pure: it says which ASR actions to take.

Frames are VAD frame indices; `samples` counts what was pushed, so a final can be matched to the moment
it was asked for: a speculative final that speech has since overtaken is not this utterance's answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from alice_voice.conversation.policy import actions as act
from alice_voice.conversation.policy import inputs as inp


@dataclass(frozen=True, slots=True)
class Rejoinable:
    """An utterance taken as ended (at `ended`; its sound ended at `spoken_until`) that the caller may still
    go on with: `text` was said, and the history holds it as the message with id `message`."""

    ended: float
    message: int
    text: str
    spoken_until: float


class Utterance:
    def __init__(self, frame_samples: int) -> None:
        self._frame = frame_samples
        self._opened = 0
        self.stream = 0  # the open stream's id; 0: none
        self.first_frame = 0  # where its audio begins (the end-of-turn model hears from here)
        self.fed = 0  # frames [first_frame, fed) have been pushed
        self._pushed = 0  # samples
        self._finish_at: int | None = None  # samples pushed when the last final was asked for
        self.prefix = ""  # the words it goes on from, when those were decoded apart
        self.partial = ""  # the last partial's text

    @property
    def open(self) -> bool:
        return self.stream != 0

    def start(self, first: int, end: int) -> list[act.Action]:
        """A stream of its own, from frame `first` to `end` (the previous one, if any, is closed)."""
        self._opened += 1
        self.stream = self._opened
        self.first_frame, self.fed, self._pushed, self._finish_at = first, end, (end - first) * self._frame, None
        return [act.OpenAsr(self.stream, first, end)]

    def feed(self, end: int, first: int | None = None) -> list[act.Action]:
        """Push frames up to `end` (from `first`, if it is past what was fed: a gap is skipped)."""
        start = self.fed if first is None else max(self.fed, first)
        if not self.stream or end <= start:
            return []
        self._pushed += (end - start) * self._frame
        self.fed = end
        return [act.FeedAsr(self.stream, start, end)]

    def go_on(self) -> None:
        """More audio follows: the last final asked for is no longer the whole utterance's."""
        self._finish_at = None

    def finish(self) -> list[act.Action]:
        """Ask for a final of everything pushed, unless one was asked for at this point already."""
        if not self.stream or self._finish_at == self._pushed:
            return []
        self._finish_at = self._pushed
        return [act.FinishAsr(self.stream)]

    def close(self) -> list[act.Action]:
        closing, self.stream, self._finish_at = self.stream, 0, None
        return [act.CloseAsr(closing)] if closing else []

    def hears(self, transcript: inp.TranscriptIn) -> bool:
        """From this utterance's stream (not one closed since)."""
        return transcript.stream == self.stream

    def is_final(self, transcript: inp.TranscriptIn) -> bool:
        """The final of everything pushed when it was asked for, not one speech has overtaken since."""
        return transcript.final and transcript.samples == self._finish_at

    def with_prefix(self, text: str) -> str:
        """The words it goes on from, then `text`, as one sentence: "What is 7?" and "Times 8?" make "What
        is 7 times 8?" (the recognizer punctuated each part as a whole)."""
        if not self.prefix or not text:
            return text or self.prefix
        head = self.prefix.rstrip(" .?!…")
        tail = text if text.startswith(("I ", "I'")) else text[0].lower() + text[1:]
        return f"{head} {tail}"
