"""The endpointer state machine, driven by scripted VAD probabilities and model answers (no models)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pytest

from alice_voice.config import Settings
from alice_voice.conversation.endpointer import (
    AskEndOfTurn,
    Endpointer,
    EndpointerConfig,
    Event,
    Phase,
    SilenceStarted,
    SpeechResumed,
    SpeechStarted,
    TurnEnded,
)

SPEECH, SILENCE, WOBBLE = 0.9, 0.05, 0.42  # WOBBLE sits between the exit (0.35) and entry (0.5) thresholds
CFG = EndpointerConfig()
FRAME_S = CFG.frame_ms / 1000


@dataclass
class Driver:
    """Feeds frames at 32 ms spacing and records (frame index, event)."""

    endpointer: Endpointer
    frame: int = 0
    log: list[tuple[int, Event]] = field(default_factory=list)
    answer: float | None = None  # if set, every question is answered at once with this probability

    def feed(self, probs: Iterable[float]) -> list[Event]:
        new: list[Event] = []
        for prob in probs:
            self.frame += 1
            events = self.endpointer.on_frame(prob, self.frame * FRAME_S)
            for event in events:
                if isinstance(event, AskEndOfTurn) and self.answer is not None:
                    events = events + self.endpointer.on_end_of_turn(event.ask_id, self.answer)
            new += events
            self.log += [(self.frame, e) for e in events]
        return new

    def of(self, kind: type) -> list[tuple[int, Event]]:
        return [(i, e) for i, e in self.log if isinstance(e, kind)]


def frames(ms: int) -> int:
    return -(-ms // CFG.frame_ms)


def speech(ms: int) -> list[float]:
    return [SPEECH] * frames(ms)


def silence(ms: int) -> list[float]:
    return [SILENCE] * frames(ms)


def test_blips_shorter_than_min_speech_start_no_turn() -> None:
    driver = Driver(Endpointer(CFG))
    blip = [SPEECH] * (frames(CFG.vad_min_speech_ms) - 1)
    for _ in range(5):
        driver.feed(blip + silence(200))
    assert driver.log == []
    assert driver.endpointer.phase is Phase.IDLE


def test_speech_start_reports_onset_and_preroll() -> None:
    driver = Driver(Endpointer(CFG))
    driver.feed(silence(300))
    first = driver.frame + 1
    events = driver.feed(speech(CFG.vad_min_speech_ms))
    assert len(events) == 1 and isinstance(events[0], SpeechStarted)
    started = events[0]
    assert started.first_speech_arrival == pytest.approx(first * FRAME_S)
    assert started.onset_frames == frames(CFG.vad_min_speech_ms)
    assert started.preroll_frames * CFG.frame_ms >= CFG.vad_preroll_ms
    assert started.keep_frames == started.onset_frames + started.preroll_frames
    assert driver.endpointer.in_turn


def test_hysteresis_keeps_speech_through_a_wobble_but_does_not_start_on_one() -> None:
    driver = Driver(Endpointer(CFG))
    driver.feed([WOBBLE] * 20)
    assert driver.log == []
    driver.feed(speech(320) + [WOBBLE] * 10 + speech(320))
    assert driver.of(SilenceStarted) == []
    assert [type(e) for _, e in driver.log] == [SpeechStarted]


def test_mid_sentence_pause_judged_incomplete_does_not_end_the_turn() -> None:
    driver = Driver(Endpointer(CFG), answer=0.1)
    driver.feed(speech(800) + silence(400))
    asks = driver.of(AskEndOfTurn)
    assert asks, "the model was asked during the pause"
    driver.feed(speech(600))
    assert driver.of(TurnEnded) == []
    assert len(driver.of(SpeechResumed)) == 1
    assert driver.endpointer.phase is Phase.SPEAKING


def test_model_complete_ends_the_turn_at_eot_silence() -> None:
    driver = Driver(Endpointer(CFG), answer=0.9)
    driver.feed(speech(640))
    last_speech = driver.frame * FRAME_S
    driver.feed(silence(1000))
    (silence_frame, _), = driver.of(SilenceStarted)
    (ask_frame, ask), = driver.of(AskEndOfTurn)
    (end_frame, ended), = driver.of(TurnEnded)
    assert isinstance(ended, TurnEnded) and isinstance(ask, AskEndOfTurn)
    assert ended.reason == "model"
    assert ended.last_speech_arrival == pytest.approx(last_speech)
    assert ask.silence_ms == (ask_frame - silence_frame + 1) * CFG.frame_ms
    assert CFG.eot_silence_ms <= ask.silence_ms < CFG.eot_silence_ms + CFG.frame_ms
    assert end_frame == ask_frame and ended.silence_ms == ask.silence_ms
    assert driver.endpointer.phase is Phase.IDLE


def test_fallback_ends_the_turn_whatever_the_model_says() -> None:
    driver = Driver(Endpointer(CFG), answer=0.01)
    driver.feed(speech(640) + silence(2000))
    (_, ended), = driver.of(TurnEnded)
    assert isinstance(ended, TurnEnded)
    assert ended.reason == "fallback"
    assert CFG.eot_fallback_ms <= ended.silence_ms < CFG.eot_fallback_ms + CFG.frame_ms


def test_recheck_cadence_follows_the_schedule() -> None:
    driver = Driver(Endpointer(CFG), answer=0.2)
    driver.feed(speech(640) + silence(CFG.eot_fallback_ms))
    asked = [e.silence_ms for _, e in driver.of(AskEndOfTurn) if isinstance(e, AskEndOfTurn)]
    due = list(range(CFG.eot_silence_ms, CFG.eot_fallback_ms, CFG.eot_recheck_ms))
    assert len(asked) == len(due)
    for ms, due_ms in zip(asked, due, strict=True):
        assert due_ms <= ms < due_ms + CFG.frame_ms


def test_one_question_at_a_time_and_a_slow_answer_does_not_shift_the_schedule() -> None:
    endpointer = Endpointer(CFG)
    driver = Driver(endpointer)  # no automatic answers
    driver.feed(speech(640) + silence(CFG.eot_silence_ms + 2 * CFG.eot_recheck_ms))
    (_, first), = driver.of(AskEndOfTurn)  # unanswered: no second question stacked on it
    assert isinstance(first, AskEndOfTurn)
    assert endpointer.on_end_of_turn(first.ask_id, 0.1) == []
    events = driver.feed(silence(CFG.frame_ms))
    assert [type(e) for e in events] == [AskEndOfTurn], "asked again at once: the next check was overdue"
    late = events[0]
    assert isinstance(late, AskEndOfTurn)
    assert endpointer.on_end_of_turn(first.ask_id, 0.99) == [], "an answered question cannot be answered again"
    assert endpointer.on_end_of_turn(late.ask_id, 0.1) == []
    driver.feed(silence(CFG.eot_fallback_ms - late.silence_ms - CFG.frame_ms))
    *_, (_, third) = driver.of(AskEndOfTurn)
    assert isinstance(third, AskEndOfTurn) and third.ask_id != late.ask_id
    due = CFG.eot_silence_ms + 3 * CFG.eot_recheck_ms  # the schedule, not late answer + recheck
    assert due <= third.silence_ms < due + CFG.frame_ms


def test_resumed_speech_discards_a_pending_question() -> None:
    endpointer = Endpointer(CFG)
    driver = Driver(endpointer)
    driver.feed(speech(640) + silence(CFG.eot_silence_ms))
    (_, ask), = driver.of(AskEndOfTurn)
    assert isinstance(ask, AskEndOfTurn)
    events = driver.feed(speech(96))
    assert [type(e) for e in events] == [SpeechResumed]
    assert endpointer.on_end_of_turn(ask.ask_id, 0.99) == [], "a late 'complete' is ignored"
    assert endpointer.phase is Phase.SPEAKING
    driver.feed(silence(CFG.eot_silence_ms))
    _, (_, second) = driver.of(AskEndOfTurn)
    assert isinstance(second, AskEndOfTurn) and second.ask_id != ask.ask_id
    ended = endpointer.on_end_of_turn(second.ask_id, 0.99)
    assert [type(e) for e in ended] == [TurnEnded]


def test_an_answer_after_the_turn_ended_is_ignored() -> None:
    endpointer = Endpointer(CFG)
    driver = Driver(endpointer)
    driver.feed(speech(640) + silence(CFG.eot_fallback_ms))
    (_, ask), = driver.of(AskEndOfTurn)
    assert isinstance(ask, AskEndOfTurn)
    assert [e.reason for _, e in driver.of(TurnEnded) if isinstance(e, TurnEnded)] == ["fallback"]
    assert endpointer.on_end_of_turn(ask.ask_id, 0.99) == []


def test_silence_only_mode_ends_on_its_own_hangover() -> None:
    config = EndpointerConfig(silence_only_ms=480)
    driver = Driver(Endpointer(config, model_enabled=False))
    driver.feed(speech(640) + silence(1000))
    assert driver.of(AskEndOfTurn) == []
    (_, ended), = driver.of(TurnEnded)
    assert isinstance(ended, TurnEnded)
    assert ended.reason == "silence"
    assert config.silence_only_ms <= ended.silence_ms < config.silence_only_ms + config.frame_ms


def test_durations_count_audio_frames_not_arrival_times() -> None:
    endpointer = Endpointer(CFG)
    burst: list[Event] = []
    for prob in speech(640) + silence(CFG.eot_fallback_ms):
        burst += endpointer.on_frame(prob, 5.0)  # one burst: every frame arrives at the same moment
    ended = [e for e in burst if isinstance(e, TurnEnded)]
    assert len(ended) == 1 and ended[0].reason == "fallback"


def test_a_new_turn_can_start_after_one_ends() -> None:
    driver = Driver(Endpointer(CFG), answer=0.9)
    driver.feed(speech(640) + silence(400) + speech(640) + silence(400))
    assert len(driver.of(SpeechStarted)) == 2
    assert len(driver.of(TurnEnded)) == 2


def test_reset_forgets_the_turn() -> None:
    endpointer = Endpointer(CFG)
    Driver(endpointer).feed(speech(640) + silence(100))
    assert endpointer.in_turn
    endpointer.reset()
    assert not endpointer.in_turn
    assert endpointer.on_frame(SILENCE, 10.0) == [], "no silence-started for a turn it forgot"


def test_config_from_settings_and_validation() -> None:
    settings = Settings(vad_threshold=0.6, eot_silence_ms=96, eot_fallback_ms=700, eot_threshold=0.7,
                        silence_only_ms=320)
    config = EndpointerConfig.from_settings(settings)
    assert config.vad_threshold == 0.6 and config.vad_exit_threshold == pytest.approx(0.45)
    assert (config.eot_silence_ms, config.eot_fallback_ms, config.eot_threshold) == (96, 700, 0.7)
    assert config.silence_only_ms == 320
    with pytest.raises(ValueError, match="vad_exit_threshold"):
        EndpointerConfig(vad_threshold=0.3, vad_exit_threshold=0.4)
    with pytest.raises(ValueError, match="eot_fallback_ms"):
        EndpointerConfig(eot_silence_ms=800, eot_fallback_ms=800)


def test_onset_frames_counts_a_candidate_onset_until_it_becomes_a_turn_or_is_lost() -> None:
    config = EndpointerConfig(vad_min_speech_ms=96)
    endpointer = Endpointer(config)
    assert endpointer.onset_frames == 0
    endpointer.on_frame(SPEECH, 0.032)
    endpointer.on_frame(SPEECH, 0.064)
    assert endpointer.onset_frames == 2 and not endpointer.in_turn
    endpointer.on_frame(SILENCE, 0.096)
    assert endpointer.onset_frames == 0, "a blip is forgotten"
    events = [e for t in range(3) for e in endpointer.on_frame(SPEECH, 0.128 + t * 0.032)]
    assert [type(e) for e in events] == [SpeechStarted]
    assert endpointer.onset_frames == 0 and endpointer.in_turn
