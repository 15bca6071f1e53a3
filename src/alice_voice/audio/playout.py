"""Clock-paced playout: reply audio waits here in 20 ms frames until the outbound track takes one a tick.

aiortc has no send queue, so this queue is the only buffer between TTS and the wire: `flush()` silences
the reply at the next tick. A reply starts once `buffer_ms` of it is queued (or its producer is done),
so a TTS that dribbles audio does not underrun at once. What has actually been sent is tracked per
reply, with the text of each segment, so a barge-in knows what the user heard.

The outbound track only takes frames from here (`next_frame`, which cannot fail). What the conversation
needs to know of it, the first frame of a reply sent, the first silent frame after a pause or cut, a
reply played out, goes to `on_mark` as a `Mark`, which the session queues: nothing of the turn runs in
the track's tick. Every frame handed out is also kept for a second in `sent`, for the echo guard.

A transport whose far end buffers audio and says what it has played (Twilio: marks) reports it with
`confirm_played(n)`: the first n frames handed out have been heard. From then on what a reply's listener
heard is what was confirmed, not what was sent, and a pause takes back the frames sent but not confirmed
(the transport drops them at the far end: Twilio's `clear`), so a resumed reply goes on from where the
caller stopped hearing it, not from where the far end's buffer was.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from alice_voice.audio.frames import WEBRTC_FRAME_SAMPLES, WEBRTC_RATE, Pcm, empty_pcm
from alice_voice.audio.marks import Mark

__all__ = ["FrameSource", "Mark", "Playout", "Reply", "Segment", "ToneSource"]


class FrameSource(Protocol):
    """What a transport's pacer pulls from, once per 20 ms tick; `sent_at`: when the frame leaves.

    `playable` is set when sound becomes ready while the source has been giving silence, so that an idle
    pacer sends it at once instead of at its next tick (the pacer clears it).
    """

    playable: asyncio.Event

    def next_frame(self, sent_at: float) -> Pcm: ...

    def confirm_played(self, frames: int) -> None:
        """The far end has played the first `frames` frames this source handed out."""
        ...


SENT_KEPT = 50  # frames (1 s) of what was sent, for the echo guard
UNCONFIRMED_KEPT = 100  # frames (2 s) of a reply sent and not yet confirmed played, that a pause may take back


@dataclass(frozen=True, slots=True)
class Segment:
    """`text` spoken by reply samples [start, end)."""

    start: int
    end: int
    text: str


@dataclass
class Reply:
    """One reply's audio as it moves through playout."""

    reply_id: int
    queued: int = 0
    sent: int = 0
    ended: bool = False
    started: bool = False
    held: bool = False
    segments: list[Segment] = field(default_factory=list)
    unconfirmed: deque[tuple[int, Pcm]] = field(default_factory=lambda: deque(maxlen=UNCONFIRMED_KEPT))
    """(frame number, frame) of each frame sent that the far end has not confirmed played (if it confirms)."""

    @property
    def heard(self) -> int:
        """Samples the listener heard: those sent, less those not yet confirmed played."""
        return self.sent - sum(len(frame) for _, frame in self.unconfirmed)

    def heard_text(self) -> str:
        """The text of what was heard: whole segments, and a partly heard one cut at the nearest word,
        assuming its words are evenly spread over its audio (TTS engines give no word timings here)."""
        heard = self.heard
        words: list[str] = []
        for seg in self.segments:
            if heard >= seg.end:
                words.extend(seg.text.split())
            elif heard > seg.start:
                seg_words = seg.text.split()
                share = (heard - seg.start) / max(1, seg.end - seg.start)
                words.extend(seg_words[: round(len(seg_words) * share)])
        return " ".join(words)


class Playout:
    """Queue of 48 kHz 20 ms frames. One reply at a time; silence when there is nothing to say."""

    def __init__(self, buffer_ms: int = 60, frame_samples: int = WEBRTC_FRAME_SAMPLES, rate: int = WEBRTC_RATE,
                 on_mark: Callable[[Mark], None] = lambda mark: None) -> None:
        """`on_mark`: where the marks go (the session's inbox): called from the pacer's tick, it only queues."""
        self._n = frame_samples
        self._min_start = int(rate * buffer_ms / 1000)
        self._frames: deque[Pcm] = deque()
        self._partial = empty_pcm()
        self._silence = np.zeros(frame_samples, dtype=np.int16)
        self.reply: Reply | None = None
        self.finished: Reply | None = None  # the last reply played out (its mark may not be read yet)
        self.on_mark = on_mark
        self.playable = asyncio.Event()
        self.sent: deque[tuple[float, Pcm]] = deque(maxlen=SENT_KEPT)
        self._cut: Reply | None = None
        self._paused = False
        self._pending_text = ""
        self.frames_out = 0  # frames handed out by next_frame
        self._confirms = False  # the transport reports what its far end played
        self._confirmed = 0

    def confirm_played(self, frames: int) -> None:
        """The far end has played the first `frames` frames handed out (a transport's acknowledgement)."""
        self._confirms = True
        self._confirmed = max(self._confirmed, min(frames, self.frames_out))
        reply = self.reply
        if reply is not None:
            while reply.unconfirmed and reply.unconfirmed[0][0] <= self._confirmed:
                reply.unconfirmed.popleft()

    @property
    def playing(self) -> bool:
        return self.reply is not None and self.reply.started

    def begin(self, reply_id: int, *, held: bool = False) -> Reply:
        """Start a new reply; whatever was left of the previous one is dropped.

        A held reply queues its audio but does not play until `release()` (speculative replies).
        """
        self.flush()
        self._pending_text = ""
        self.reply = Reply(reply_id, held=held)
        return self.reply

    def release(self, reply_id: int) -> None:
        if self.reply is not None and self.reply.reply_id == reply_id:
            self.reply.held = False
            self._announce_if_playable()

    def push(self, reply_id: int, pcm48: Pcm, text: str) -> None:
        """Queue audio of reply `reply_id` (dropped if that reply is no longer the one playing)."""
        reply = self.reply
        if reply is None or reply.reply_id != reply_id or reply.ended:
            return
        if len(pcm48) == 0:  # (trimmed to nothing) its text belongs to the audio that comes next
            self._pending_text = f"{self._pending_text} {text}".strip()
            return
        text, self._pending_text = f"{self._pending_text} {text}".strip(), ""
        reply.segments.append(Segment(reply.queued, reply.queued + len(pcm48), text))
        reply.queued += len(pcm48)
        buf = np.concatenate([self._partial, pcm48]) if len(self._partial) else pcm48
        whole = len(buf) // self._n
        self._frames.extend(buf[i * self._n:(i + 1) * self._n] for i in range(whole))
        self._partial = buf[whole * self._n:].copy()
        self._announce_if_playable()

    def end(self, reply_id: int) -> None:
        """The producer of reply `reply_id` is done: pad and release the last partial frame."""
        reply = self.reply
        if reply is None or reply.reply_id != reply_id or reply.ended:
            return
        if len(self._partial):
            self._frames.append(np.pad(self._partial, (0, self._n - len(self._partial))))
            self._partial = empty_pcm()
        reply.ended = True
        self._announce_if_playable()

    def _ready(self, reply: Reply) -> bool:
        """A reply not started yet may start: enough is queued, or all of it."""
        return bool(self._frames) and (reply.ended or len(self._frames) * self._n >= self._min_start)

    def _announce_if_playable(self) -> None:
        reply = self.reply
        if reply is not None and not reply.started and not reply.held and not self._paused and self._ready(reply):
            self.playable.set()

    def flush(self) -> Reply | None:
        """Drop every frame not yet sent; returns the reply that was cut (None if idle)."""
        reply, self.reply = self.reply, None
        self._frames.clear()
        self._partial = empty_pcm()
        if reply is not None and reply.started and not self._paused:
            self._cut = reply
        self._paused = False
        return reply

    def pause(self) -> None:
        """Silence at the next tick, keeping the queue (a barge-in not yet confirmed). Where the far end
        confirms what it played, what it was sent but has not played is taken back, to go out again on
        `resume()` (the transport drops it there)."""
        reply = self.reply
        if reply is not None and reply.started and not self._paused:
            self._paused = True
            self._cut = reply
            if reply.unconfirmed:
                taken = [frame for _, frame in reply.unconfirmed]
                reply.unconfirmed.clear()
                reply.sent -= sum(len(frame) for frame in taken)
                self._frames.extendleft(reversed(taken))

    def resume(self) -> None:
        self._paused = False
        if self._cut is self.reply:
            self._cut = None  # paused and resumed within one tick: nothing went silent, nothing to report

    @property
    def paused(self) -> bool:
        return self._paused

    def next_frame(self, sent_at: float) -> Pcm:
        frame = self._next(sent_at)
        self.frames_out += 1
        self.sent.append((sent_at, frame))
        return frame

    def _next(self, sent_at: float) -> Pcm:
        if self._cut is not None:
            cut, self._cut = self._cut, None
            self.on_mark(Mark(cut.reply_id, "silenced", cut.started, sent_at))
        reply = self.reply
        if reply is None or reply.held or self._paused:
            return self._silence
        if not reply.started:
            if not self._ready(reply):
                return self._finish_if_done(reply, sent_at)
            reply.started = True
            self.on_mark(Mark(reply.reply_id, "first_frame", True, sent_at))
            return self._take(reply)
        if self._frames:
            return self._take(reply)
        return self._finish_if_done(reply, sent_at)

    def _take(self, reply: Reply) -> Pcm:
        frame = self._frames.popleft()
        reply.sent = min(reply.queued, reply.sent + self._n)
        if self._confirms:
            reply.unconfirmed.append((self.frames_out + 1, frame))  # its number once handed out
        return frame

    def _finish_if_done(self, reply: Reply, sent_at: float) -> Pcm:
        if reply.ended and not self._frames:
            self.reply, self.finished = None, reply
            self.on_mark(Mark(reply.reply_id, "finished", reply.started, sent_at))
        return self._silence


class ToneSource:
    """The test tone as a frame source; `stop()` silences it (the tone's stop-tts)."""

    def confirm_played(self, frames: int) -> None:
        """(Nothing to take back: the tone has no listener to keep in step.)"""

    def __init__(self, next_tone_frame: Callable[[], Pcm]) -> None:
        self._next = next_tone_frame
        self.playable = asyncio.Event()  # (never set: the tone never waits to start)
        self._silence = np.zeros(WEBRTC_FRAME_SAMPLES, dtype=np.int16)
        self.playing = True

    def stop(self) -> bool:
        was, self.playing = self.playing, False
        return was

    def next_frame(self, sent_at: float) -> Pcm:
        return self._next() if self.playing else self._silence
