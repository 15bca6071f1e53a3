"""Endpointing: when speech starts, pauses and ends. Pure: no audio, models, I/O or clock reads.

Fed one VAD result per frame (32 ms for Silero) and the end-of-turn model's answers; returns small events
for the turn policy, which alone decides what they mean for the conversation.

    idle --(a voiced frame)--> idle, onset pending             Onset: a reply may pause on it
    idle, onset pending --(a silent frame)--> idle             OnsetLost: a click or a cough
    idle --(vad_min_speech_ms voiced)--> speaking              SpeechStarted
    speaking --(a silent frame)--> pausing                     SilenceStarted: start the final decode
    pausing --(a voiced frame)--> speaking                     SpeechResumed: that decode is void
    pausing --(eot_silence_ms, then every eot_recheck_ms,      AskEndOfTurn: run the model
               each ask_lead_ms early)-->
    pausing --(the silence the evidence asks for)--> idle      TurnEnded(why)

How long a pause must last before the turn is over depends on the evidence (with `words_enabled`): the
end-of-turn model, which hears how the speech ended (asked again as the silence grows), and the words of
the speculative final, scored by the completeness model (`on_words(p)`: P(a finished sentence), from the
words the audio holds). The wait is the shortest the evidence allows:

    evidence at the pause                                          silence needed        TurnEnded reason
    words finished (p >= words_finished_at), the model "complete"  eot_silence_ms        "agreed"
    words cut mid-sentence (p < words_unfinished_below)            max_wait_ms           "ceiling"
    anything else (words in between, the model "incomplete",       eot_fallback_ms       "fallback"
      words not in yet, or no words to read)

So a finished question ends at the first answer of the model ("where is my order four two seven?" as fast
as any), a sentence paused after "set a timer for" waits for the caller up to the ceiling, and a pause the
two disagree on gets the patient fallback. The model is not asked while the words alone decide (cut
mid-sentence). Until the words are in (the final decode takes ~100-250 ms) a "complete" waits for them:
a turn cannot be answered before its words are known anyway. With `words_enabled` off the model alone
decides, and the fallback bounds the wait.

Frames are classified with hysteresis (a Schmitt trigger): voiced at prob >= vad_threshold, silent below
vad_exit_threshold, and a frame in between keeps the previous class, so a word whose probability wobbles
around the threshold is neither cut nor started twice.

The end of speech is dated by the sound, not by the VAD: Silero's probability decays over 50-150 ms after
the last voiced sound, so the VAD leaves speech late. Inside the VAD's speech run, the last sub-block of a
frame loud against the run's peak (`loud_ratio`, above `loud_floor`) marks where speech ended; the silence
clock runs from there, and the latency metrics are measured from its arrival. Every turn ends that much
sooner, for the same amount of real silence.

Durations are counted in audio samples, not from arrival times: the network delivers frames in bursts,
and a burst must not look like silence or speech growing faster than it was spoken. Arrival times only
stamp the events. Without an end-of-turn model the turn ends after `silence_only_ms` of silence.

Only one model question is in flight at a time, and each carries an id: an answer to an older question
(speech resumed, or the turn already ended) is ignored.

The model is asked `ask_lead_ms` before the silence it is asked about, on the audio so far with the
quiet that is still to come added (`AskEndOfTurn.pad_ms`, the executor repeats the silence it has): the
model's ~50-200 ms run then overlaps the wait instead of following it, so a turn both agree is over ends
at `eot_silence_ms` rather than that plus the model's time. The answer is held until the silence it was
about has passed, and speech in between voids it (as any answer), so what ends a turn is unchanged; the
cost is more questions, as pauses a little shorter than `eot_silence_ms` are asked about too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Literal

FRAME_SAMPLES = 512  # Silero VAD at 16 kHz: 32 ms
RATE = 16_000


@dataclass(frozen=True, slots=True)
class EndpointingConfig:
    """Thresholds and durations (ms). See the module docstring for their roles."""

    vad_threshold: float = 0.5
    vad_exit_threshold: float = 0.35
    vad_min_speech_ms: int = 64
    vad_preroll_ms: int = 256
    eot_silence_ms: int = 224
    eot_threshold: float = 0.7
    eot_recheck_ms: int = 200
    ask_lead_ms: int = 64  # ask the model this long before each silence it is asked about (see above)
    eot_fallback_ms: int = 1200
    max_wait_ms: int = 2500
    words_finished_at: float = 0.8
    words_unfinished_below: float = 0.3
    silence_only_ms: int = 512
    model_enabled: bool = True
    words_enabled: bool = False  # (the gateway's settings switch it on: EOT_WORDS)
    loud_floor: float = 100.0  # int16 RMS (about -50 dBFS): quieter is never speech's sound
    loud_ratio: float = 0.01  # a sub-block within 40 dB of the run's loudest still sounds (soft endings too)
    frame_samples: int = FRAME_SAMPLES
    rate: int = RATE

    def __post_init__(self) -> None:
        if not 0 < self.vad_exit_threshold <= self.vad_threshold < 1:
            raise ValueError("need 0 < vad_exit_threshold <= vad_threshold < 1")
        if self.eot_recheck_ms <= 0 or self.frame_samples <= 0:
            raise ValueError("eot_recheck_ms and frame_samples must be positive")
        if not self.eot_silence_ms < self.eot_fallback_ms <= self.max_wait_ms:
            raise ValueError("need eot_silence_ms < eot_fallback_ms <= max_wait_ms")
        if not 0 <= self.words_unfinished_below <= self.words_finished_at <= 1:
            raise ValueError("need 0 <= words_unfinished_below <= words_finished_at <= 1")
        if not 0 < self.loud_ratio <= 1 or self.loud_floor < 0:
            raise ValueError("need 0 < loud_ratio <= 1 and loud_floor >= 0")
        if not 0 <= self.ask_lead_ms <= self.eot_silence_ms:
            raise ValueError("need 0 <= ask_lead_ms <= eot_silence_ms")

    @property
    def frame_ms(self) -> float:
        return self.frame_samples * 1000 / self.rate

    def frames(self, ms: int) -> int:
        """Whole frames needed to cover `ms` (at least one)."""
        return max(1, math.ceil(ms / self.frame_ms))


# ---------- events ----------
@dataclass(frozen=True, slots=True)
class Onset:
    """A first voiced frame, before it is known to be speech."""

    arrival: float


@dataclass(frozen=True, slots=True)
class OnsetLost:
    """The onset did not become speech."""


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """A turn began: its first voiced frame arrived at `first_arrival`; keep frames from `keep_from` on
    (the onset and the pre-roll before it)."""

    first_arrival: float
    keep_from: int


@dataclass(frozen=True, slots=True)
class SilenceStarted:
    """The VAD left speech: the caller may start the speculative final decode."""

    last_speech_arrival: float


@dataclass(frozen=True, slots=True)
class SpeechResumed:
    """Speech again before the turn ended: what was speculated on the pause is void."""


@dataclass(frozen=True, slots=True)
class AskEndOfTurn:
    """Run the end-of-turn model on the audio so far followed by `pad_ms` more of its silence (the part of
    the pause asked about that has not come yet); answer with `on_answer(ask_id, p)`."""

    ask_id: int
    pad_ms: float = 0.0


EndReason = Literal["agreed", "ceiling", "fallback", "silence"]


@dataclass(frozen=True, slots=True)
class TurnEnded:
    """The turn is over; `silence_ms` of silence (from the end of the sound) decided it, for `reason`
    (the table of the module docstring; "silence": no end-of-turn model)."""

    reason: EndReason
    last_speech_arrival: float
    silence_ms: float


Event = Onset | OnsetLost | SpeechStarted | SilenceStarted | SpeechResumed | AskEndOfTurn | TurnEnded


class Phase(Enum):
    IDLE = "idle"
    SPEAKING = "speaking"
    PAUSING = "pausing"


class Endpointing:
    """Turn start/end decisions for one stream of VAD frames."""

    def __init__(self, config: EndpointingConfig) -> None:
        self.config = config
        self._min_speech = config.frames(config.vad_min_speech_ms)
        self._preroll = math.ceil(config.vad_preroll_ms / config.frame_ms)
        self._voiced = False  # the hysteresis state, kept across turns
        self._next_ask_id = 0
        self.reset()

    @property
    def phase(self) -> Phase:
        return self._phase

    def patience_ms(self, reason: EndReason) -> float:
        """The silence a turn that ended for `reason` waited beyond the shortest end of turn: the caller's
        time to go on, not the box's time to answer (admission must not read it as slowness)."""
        cfg = self.config
        waited = {"fallback": cfg.eot_fallback_ms, "ceiling": cfg.max_wait_ms}.get(reason, cfg.eot_silence_ms)
        return float(max(0, waited - cfg.eot_silence_ms))

    @property
    def quiet(self) -> bool:
        """Idle, and not even an onset under way (a voiced frame may be the caller going on)."""
        return self._phase is Phase.IDLE and self._run == 0

    @property
    def asking(self) -> bool:
        return self._pending_ask is not None

    def reset(self) -> None:
        """Forget any turn in progress."""
        self._phase = Phase.IDLE
        self._run = 0  # consecutive voiced frames while idle
        self._run_start = (0, 0.0)  # (frame index, arrival) of the run's first frame
        self._peak = 0.0
        self._sound_end = 0  # sample position where the last loud sound ended
        self._sound_end_arrival = 0.0
        self._pending_ask: int | None = None
        self._next_ask_ms = 0
        self._silence_ms = 0.0
        self._model_says_complete = False  # for the silence so far
        self._words_in = False  # the speculative final of this pause is back
        self._words: float | None = None  # its P(finished); None: no words to read

    def on_frame(self, index: int, arrival: float, prob: float, loudness: Sequence[float]) -> list[Event]:
        """The VAD result for frame `index` (counted from the stream's start), which arrived at `arrival`;
        `loudness`: the RMS of each equal sub-block of the frame, in order."""
        voiced = self._classify(prob)
        if voiced:
            self._hear_sound(index, arrival, loudness)
        if self._phase is Phase.IDLE:
            return self._idle(voiced, index, arrival)
        if voiced:
            return self._speech()
        return self._silence(index)

    def on_answer(self, ask_id: int, prob: float) -> list[Event]:
        """The model's answer to `AskEndOfTurn(ask_id)`; answers to stale questions are ignored."""
        if ask_id != self._pending_ask:
            return []
        self._pending_ask = None
        self._model_says_complete = prob >= self.config.eot_threshold
        return self._decide()

    def on_words(self, complete: float | None) -> list[Event]:
        """The speculative final of this pause is in: P(its words are a finished sentence), or None when it
        has none (the recognizer heard nothing it could write)."""
        if self._phase is not Phase.PAUSING:
            return []
        self._words_in, self._words = True, complete
        return self._decide()

    def _decide(self) -> list[Event]:
        needed, reason = self._silence_needed()
        return [self._end(reason, self._silence_ms)] if self._silence_ms >= needed else []

    def _silence_needed(self) -> tuple[float, EndReason]:
        """The silence the evidence of this pause asks for (the module docstring's table)."""
        cfg = self.config
        if not cfg.words_enabled:
            return (cfg.eot_silence_ms, "agreed") if self._model_says_complete else (cfg.eot_fallback_ms, "fallback")
        words = self._words if self._words_in else None
        if words is not None and words < cfg.words_unfinished_below:
            return cfg.max_wait_ms, "ceiling"
        if words is not None and words >= cfg.words_finished_at and self._model_says_complete:
            return cfg.eot_silence_ms, "agreed"
        return cfg.eot_fallback_ms, "fallback"

    def _model_may_decide(self) -> bool:
        """Whether asking the model could end the turn sooner (not when the words alone decide)."""
        cfg = self.config
        return not (cfg.words_enabled and self._words_in and self._words is not None
                    and self._words < cfg.words_unfinished_below)

    def on_failed_answer(self, ask_id: int) -> None:
        """The question got no answer: ask again on schedule (the fallback still ends the turn)."""
        if ask_id == self._pending_ask:
            self._pending_ask = None

    # ---------- transitions ----------
    def _classify(self, prob: float) -> bool:
        if prob >= self.config.vad_threshold:
            self._voiced = True
        elif prob < self.config.vad_exit_threshold:
            self._voiced = False
        return self._voiced

    def _hear_sound(self, index: int, arrival: float, loudness: Sequence[float]) -> None:
        """Move the end of the sound to the last loud sub-block of this voiced frame, if it has one."""
        cfg = self.config
        frame_end = (index + 1) * cfg.frame_samples
        if self._phase is Phase.IDLE and self._run == 0:
            self._peak = 0.0  # a new run: the last one's loudness says nothing about this one
        self._peak = max(self._peak, *loudness, 0.0)
        threshold = max(cfg.loud_floor, cfg.loud_ratio * self._peak)
        loud = [i for i, level in enumerate(loudness) if level >= threshold]
        if loud:
            after = (len(loudness) - 1 - loud[-1]) * cfg.frame_samples // len(loudness)
            self._sound_end, self._sound_end_arrival = frame_end - after, arrival - after / cfg.rate
        elif self._peak < cfg.loud_floor:  # nothing of this run was ever loud: date it by the VAD
            self._sound_end, self._sound_end_arrival = frame_end, arrival

    def _idle(self, voiced: bool, index: int, arrival: float) -> list[Event]:
        if not voiced:
            lost = self._run > 0
            self._run = 0
            return [OnsetLost()] if lost else []
        events: list[Event] = []
        if self._run == 0:
            self._run_start = (index, arrival)
            events.append(Onset(arrival))
        self._run += 1
        if self._run < self._min_speech:
            return events
        self._phase = Phase.SPEAKING
        first_index, first_arrival = self._run_start
        return [*events, SpeechStarted(first_arrival, max(0, first_index - self._preroll))]

    def _speech(self) -> list[Event]:
        resumed = self._phase is Phase.PAUSING
        self._phase = Phase.SPEAKING
        self._pending_ask = None  # its answer would be about audio that is no longer the end
        self._model_says_complete, self._words_in, self._words = False, False, None
        return [SpeechResumed()] if resumed else []

    def _silence(self, index: int) -> list[Event]:
        cfg = self.config
        events: list[Event] = []
        if self._phase is Phase.SPEAKING:
            self._phase = Phase.PAUSING
            self._next_ask_ms = cfg.eot_silence_ms - cfg.ask_lead_ms
            events.append(SilenceStarted(self._sound_end_arrival))
        silence_ms = ((index + 1) * cfg.frame_samples - self._sound_end) * 1000 / cfg.rate
        self._silence_ms = silence_ms
        if not cfg.model_enabled:
            if silence_ms >= cfg.silence_only_ms:
                events.append(self._end("silence", silence_ms))
            return events
        needed, reason = self._silence_needed()
        if silence_ms >= needed:
            events.append(self._end(reason, silence_ms))
        elif (self._pending_ask is None and silence_ms >= self._next_ask_ms and self._model_may_decide()
              and self._next_ask_ms + cfg.ask_lead_ms < needed):  # (an early question about the end itself: moot)
            events.append(self._ask(silence_ms))
        return events

    def _ask(self, silence_ms: float) -> AskEndOfTurn:
        self._next_ask_id += 1
        self._pending_ask = self._next_ask_id
        asked_about = self._next_ask_ms + self.config.ask_lead_ms  # the silence this question is about
        # The cadence follows its schedule (eot_silence_ms + k * eot_recheck_ms), not the moment an
        # answer came back, so one slow answer does not push every later question back.
        while self._next_ask_ms <= silence_ms:
            self._next_ask_ms += self.config.eot_recheck_ms
        return AskEndOfTurn(self._pending_ask, max(0.0, asked_about - silence_ms))

    def _end(self, reason: EndReason, silence_ms: float) -> TurnEnded:
        event = TurnEnded(reason, self._sound_end_arrival, silence_ms)
        self.reset()
        return event
