"""Endpointing: when a user's turn starts and ends. A pure state machine: no audio, models, I/O or clock.

Fed one VAD speech probability per frame (32 ms for Silero) with the frame's arrival time, and the
answers of the end-of-turn model; returns small events telling the caller what to do.

    idle --(vad_min_speech_ms of speech)--> speaking          SpeechStarted
    speaking --(a silent frame)--> pausing                     SilenceStarted: start the final decode
    pausing --(a speech frame)--> speaking                     SpeechResumed: drop that decode
    pausing --(eot_silence_ms, then every eot_recheck_ms)-->   AskEndOfTurn: run the model
    pausing --(model >= eot_threshold)--> idle                 TurnEnded("model")
    pausing --(eot_fallback_ms of silence)--> idle             TurnEnded("fallback")

Frames are classified with hysteresis (a Schmitt trigger): speech at prob >= vad_threshold,
silence below vad_exit_threshold, and a frame in between keeps the previous class, so a word whose
probability wobbles around the threshold is neither cut nor started twice.

Durations are counted in frames (audio time), not from arrival times: the network delivers frames
in bursts, and a burst must not look like silence or speech growing faster than it was spoken.
Arrival times only stamp the events, for the latency metrics.

Without an end-of-turn model the turn ends after `silence_only_ms` of silence (reason "silence").
That is a separate setting rather than eot_fallback_ms: the fallback is a safety net behind a model
(long, rarely reached), while a silence-only hangover is the one latency/cut-off trade-off the
deployment makes. bench/eot_sweep.py measures it: 512 ms kept every 250 and 400 ms pause whole and
cut every 600 ms one, ending complete turns 512 ms after the last speech frame.

Only one model question is in flight at a time, and each carries an id: an answer to an older
question (speech resumed, or the turn already ended) is ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from alice_voice.config import Settings

FRAME_MS = 32  # Silero VAD at 16 kHz
EXIT_MARGIN = 0.15  # Silero's own streaming iterator leaves speech at threshold - 0.15


@dataclass(frozen=True, slots=True)
class EndpointerConfig:
    """Thresholds and durations (ms) of the endpointer. See the module docstring for their roles."""

    vad_threshold: float = 0.5
    vad_exit_threshold: float = 0.35
    vad_min_speech_ms: int = 64
    vad_preroll_ms: int = 256
    eot_silence_ms: int = 160
    eot_threshold: float = 0.5
    eot_recheck_ms: int = 200
    eot_fallback_ms: int = 800
    silence_only_ms: int = 512
    frame_ms: int = FRAME_MS

    def __post_init__(self) -> None:
        if not 0 < self.vad_exit_threshold <= self.vad_threshold < 1:
            raise ValueError("need 0 < vad_exit_threshold <= vad_threshold < 1")
        if self.eot_recheck_ms <= 0 or self.frame_ms <= 0:
            raise ValueError("eot_recheck_ms and frame_ms must be positive")
        if self.eot_fallback_ms <= self.eot_silence_ms:
            raise ValueError("eot_fallback_ms must be longer than eot_silence_ms")

    @classmethod
    def from_settings(cls, settings: Settings, *, silence_only_ms: int = 512,
                      exit_margin: float = EXIT_MARGIN) -> EndpointerConfig:
        return cls(
            vad_threshold=settings.vad_threshold,
            vad_exit_threshold=max(0.01, settings.vad_threshold - exit_margin),
            vad_min_speech_ms=settings.vad_min_speech_ms,
            vad_preroll_ms=settings.vad_preroll_ms,
            eot_silence_ms=settings.eot_silence_ms,
            eot_threshold=settings.eot_threshold,
            eot_recheck_ms=settings.eot_recheck_ms,
            eot_fallback_ms=settings.eot_fallback_ms,
            silence_only_ms=settings.silence_only_ms,
        )

    def frames(self, ms: int) -> int:
        """Whole frames needed to cover `ms` (at least one)."""
        return max(1, math.ceil(ms / self.frame_ms))


# ---------- events ----------
@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """A turn began. The caller keeps its last `onset_frames + preroll_frames` frames as the turn's start.

    `onset_frames` speech frames (this one included) led to the decision; `preroll_frames` more
    precede them.
    """

    first_speech_arrival: float
    onset_frames: int
    preroll_frames: int

    @property
    def keep_frames(self) -> int:
        return self.onset_frames + self.preroll_frames


@dataclass(frozen=True, slots=True)
class SilenceStarted:
    """First silent frame after speech: the caller may start the speculative final decode."""

    last_speech_arrival: float


@dataclass(frozen=True, slots=True)
class SpeechResumed:
    """Speech again before the turn ended: the speculation (decode, reply) is void."""

    arrival: float


@dataclass(frozen=True, slots=True)
class AskEndOfTurn:
    """Run the end-of-turn model on the turn's audio so far; answer with `on_end_of_turn(ask_id, p)`."""

    ask_id: int
    silence_ms: int


@dataclass(frozen=True, slots=True)
class TurnEnded:
    """The turn is over. `silence_ms` is the trailing silence seen when it was decided."""

    reason: Literal["model", "fallback", "silence"]
    last_speech_arrival: float
    silence_ms: int


Event = SpeechStarted | SilenceStarted | SpeechResumed | AskEndOfTurn | TurnEnded


class Phase(Enum):
    IDLE = "idle"
    SPEAKING = "speaking"
    PAUSING = "pausing"


class Endpointer:
    """Turn start/end decisions for one stream. `model_enabled=False`: silence-only endpointing."""

    def __init__(self, config: EndpointerConfig, *, model_enabled: bool = True) -> None:
        self.config = config
        self.model_enabled = model_enabled
        self._min_speech = config.frames(config.vad_min_speech_ms)
        self._preroll = math.ceil(config.vad_preroll_ms / config.frame_ms)
        self._voiced = False  # the hysteresis state, kept across turns
        self._next_ask_id = 0
        self.reset()

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def in_turn(self) -> bool:
        return self._phase is not Phase.IDLE

    @property
    def onset_frames(self) -> int:
        """Speech frames counted towards a turn that has not started yet (0 when none, or in a turn)."""
        return self._run if self._phase is Phase.IDLE else 0

    def reset(self) -> None:
        """Forget any turn in progress (e.g. the session was interrupted or restarted)."""
        self._phase = Phase.IDLE
        self._run = 0  # consecutive speech frames while idle
        self._run_start = 0.0
        self._last_speech = 0.0
        self._silence_frames = 0
        self._pending_ask: int | None = None
        self._next_ask_ms = 0

    def on_frame(self, prob: float, arrival: float) -> list[Event]:
        """One VAD probability for the next frame, which reached the gateway at `arrival` (s)."""
        voiced = self._classify(prob)
        if self._phase is Phase.IDLE:
            return self._idle(voiced, arrival)
        if voiced:
            return self._speech(arrival)
        return self._silence()

    def on_end_of_turn(self, ask_id: int, prob: float) -> list[Event]:
        """The model's answer to `AskEndOfTurn(ask_id)`; answers to stale questions are ignored."""
        if ask_id != self._pending_ask:
            return []
        self._pending_ask = None
        if prob >= self.config.eot_threshold:
            return [self._end("model")]
        return []

    # ---------- transitions ----------
    def _classify(self, prob: float) -> bool:
        if prob >= self.config.vad_threshold:
            self._voiced = True
        elif prob < self.config.vad_exit_threshold:
            self._voiced = False
        return self._voiced

    def _idle(self, voiced: bool, arrival: float) -> list[Event]:
        if not voiced:
            self._run = 0
            return []
        if self._run == 0:
            self._run_start = arrival
        self._run += 1
        self._last_speech = arrival
        if self._run < self._min_speech:
            return []
        self._phase = Phase.SPEAKING
        return [SpeechStarted(self._run_start, self._run, self._preroll)]

    def _speech(self, arrival: float) -> list[Event]:
        resumed = self._phase is Phase.PAUSING
        self._phase = Phase.SPEAKING
        self._last_speech = arrival
        self._silence_frames = 0
        self._pending_ask = None  # its answer would be about audio that is no longer the end
        return [SpeechResumed(arrival)] if resumed else []

    def _silence(self) -> list[Event]:
        cfg = self.config
        events: list[Event] = []
        if self._phase is Phase.SPEAKING:
            self._phase = Phase.PAUSING
            self._next_ask_ms = cfg.eot_silence_ms
            events.append(SilenceStarted(self._last_speech))
        self._silence_frames += 1
        silence_ms = self._silence_frames * cfg.frame_ms
        if not self.model_enabled:
            if silence_ms >= cfg.silence_only_ms:
                events.append(self._end("silence"))
            return events
        if silence_ms >= cfg.eot_fallback_ms:
            events.append(self._end("fallback"))
        elif self._pending_ask is None and silence_ms >= self._next_ask_ms:
            events.append(self._ask(silence_ms))
        return events

    def _ask(self, silence_ms: int) -> AskEndOfTurn:
        self._next_ask_id += 1
        self._pending_ask = self._next_ask_id
        # The cadence follows its schedule (eot_silence_ms + k * eot_recheck_ms), not the moment an
        # answer came back, so one slow answer does not push every later question back.
        while self._next_ask_ms <= silence_ms:
            self._next_ask_ms += self.config.eot_recheck_ms
        return AskEndOfTurn(self._pending_ask, silence_ms)

    def _end(self, reason: Literal["model", "fallback", "silence"]) -> TurnEnded:
        event = TurnEnded(reason, self._last_speech, self._silence_frames * self.config.frame_ms)
        self.reset()
        return event
