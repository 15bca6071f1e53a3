"""Endpointing, driven by scripted VAD probabilities, sub-block loudness and model answers (no models)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pytest

from alice_voice.config import Settings
from alice_voice.conversation.policy import PolicyConfig
from alice_voice.conversation.policy.endpointing import (
    AskEndOfTurn,
    Endpointing,
    EndpointingConfig,
    EndReason,
    Event,
    Onset,
    OnsetLost,
    Phase,
    SilenceStarted,
    SpeechResumed,
    SpeechStarted,
    TurnEnded,
)

SPEECH, SILENCE, WOBBLE = 0.9, 0.05, 0.42  # WOBBLE sits between the exit (0.35) and entry (0.5) thresholds
LOUD = (4000.0,) * 4  # int16 RMS of each 128-sample sub-block
QUIET = (10.0,) * 4  # below loud_floor (100)
CFG = EndpointingConfig(ask_lead_ms=0)  # asked on time: the schedule's tests; asking early has a table of its own
FRAME_S = CFG.frame_samples / CFG.rate
SUB_S = CFG.frame_samples // 4 / CFG.rate  # one sub-block: 8 ms
T0 = 7.0  # arrivals are offset from the sample clock, so a test can tell an arrival from an audio position

Frame = tuple[float, Sequence[float]]  # (VAD probability, loudness of each sub-block)


def arrival(index: int) -> float:
    """Frame `index` arrives when its last sample has been captured."""
    return T0 + (index + 1) * FRAME_S


@dataclass
class Driver:
    """Feeds frames at 32 ms spacing and records (frame index, event)."""

    endpointing: Endpointing
    index: int = -1  # of the last frame fed
    log: list[tuple[int, Event]] = field(default_factory=list)
    answer: float | None = None  # if set, every question is answered at once with this probability

    def feed(self, frames: Iterable[Frame]) -> list[Event]:
        new: list[Event] = []
        for prob, loudness in frames:
            self.index += 1
            events = self.endpointing.on_frame(self.index, arrival(self.index), prob, loudness)
            for event in events:
                if isinstance(event, AskEndOfTurn) and self.answer is not None:
                    events = events + self.endpointing.on_answer(event.ask_id, self.answer)
            new += events
            self.log += [(self.index, e) for e in events]
        return new

    def of(self, kind: type) -> list[tuple[int, Event]]:
        return [(i, e) for i, e in self.log if isinstance(e, kind)]

    def kinds(self) -> list[type]:
        return [type(e) for _, e in self.log]


def frames(ms: int) -> int:
    return -(-ms // round(CFG.frame_ms))


def speech(ms: int, loudness: Sequence[float] = LOUD, prob: float = SPEECH) -> list[Frame]:
    return [(prob, loudness)] * frames(ms)


def silence(ms: int) -> list[Frame]:
    return [(SILENCE, QUIET)] * frames(ms)


def silence_ms(frame: int, last_loud_frame: int) -> float:
    """Silence at `frame` counted from the end of a wholly loud frame."""
    return (frame - last_loud_frame) * CFG.frame_ms


def single(driver: Driver, kind: type) -> tuple[int, Event]:
    found = driver.of(kind)
    assert len(found) == 1, f"one {kind.__name__}, got {driver.log}"
    return found[0]


# ---------- onsets and the start of a turn ----------
def test_blips_shorter_than_min_speech_start_no_turn() -> None:
    driver = Driver(Endpointing(CFG))
    blip = speech(CFG.vad_min_speech_ms)[:-1]
    for _ in range(5):
        driver.feed(blip + silence(200))
    assert driver.kinds() == [Onset, OnsetLost] * 5
    assert driver.endpointing.phase is Phase.IDLE


def test_a_one_frame_click_is_an_onset_then_lost() -> None:
    driver = Driver(Endpointing(CFG))
    driver.feed(silence(96))
    click = driver.index + 1
    driver.feed(speech(32) + silence(96))
    assert driver.log == [(click, Onset(arrival(click))), (click + 1, OnsetLost())]
    assert driver.of(SpeechStarted) == []


def test_a_real_onset_is_an_onset_then_speech_started_and_never_lost() -> None:
    driver = Driver(Endpointing(CFG))
    driver.feed(silence(320))  # frames 0-9
    first = driver.index + 1
    driver.feed(speech(CFG.vad_min_speech_ms))
    min_frames = CFG.frames(CFG.vad_min_speech_ms)
    preroll = -(-CFG.vad_preroll_ms // round(CFG.frame_ms))
    assert driver.log == [(first, Onset(arrival(first))),
                          (first + min_frames - 1, SpeechStarted(arrival(first), first - preroll))]
    assert driver.endpointing.phase is Phase.SPEAKING
    driver.feed(silence(96) + speech(64) + silence(96))
    assert driver.of(OnsetLost) == [], "the silence after speech is a pause, not a lost onset"


@pytest.mark.parametrize(("preroll_ms", "onset", "keep_from"), [
    (256, 20, 12),  # 8 frames of pre-roll before the onset
    (100, 20, 16),  # rounded up to whole frames: 4
    (0, 20, 20),
    (256, 3, 0),  # floored at the stream's start
])
def test_keep_from_is_the_onset_minus_the_preroll(preroll_ms: int, onset: int, keep_from: int) -> None:
    driver = Driver(Endpointing(EndpointingConfig(vad_preroll_ms=preroll_ms)))
    driver.feed(silence(onset * 32) + speech(CFG.vad_min_speech_ms))
    (_, started), = driver.of(SpeechStarted)
    assert started == SpeechStarted(arrival(onset), keep_from)


def test_hysteresis_keeps_speech_through_a_wobble_but_does_not_start_on_one() -> None:
    driver = Driver(Endpointing(CFG))
    driver.feed(speech(640, prob=WOBBLE))
    assert driver.log == [], "a wobble from silence is not even an onset"
    driver.feed(speech(320) + speech(320, prob=WOBBLE) + speech(320))
    assert driver.kinds() == [Onset, SpeechStarted]
    assert driver.endpointing.phase is Phase.SPEAKING


# ---------- questions to the model ----------
def test_mid_sentence_pause_judged_incomplete_does_not_end_the_turn() -> None:
    driver = Driver(Endpointing(CFG), answer=0.1)
    driver.feed(speech(800) + silence(400))
    assert driver.of(AskEndOfTurn), "the model was asked during the pause"
    driver.feed(speech(600))
    assert driver.of(TurnEnded) == []
    assert len(driver.of(SpeechResumed)) == 1
    assert driver.endpointing.phase is Phase.SPEAKING


def test_model_complete_ends_the_turn_at_eot_silence() -> None:
    driver = Driver(Endpointing(CFG), answer=0.9)
    driver.feed(speech(640))
    last_loud = driver.index
    driver.feed(silence(1000))
    silence_frame, silenced = single(driver, SilenceStarted)
    ask_frame, _ = single(driver, AskEndOfTurn)
    end_frame, ended = single(driver, TurnEnded)
    assert silence_frame == last_loud + 1
    assert silenced == SilenceStarted(arrival(last_loud))
    assert ask_frame == last_loud + CFG.frames(CFG.eot_silence_ms), "asked once eot_silence_ms has passed"
    assert CFG.eot_silence_ms <= silence_ms(ask_frame, last_loud) < CFG.eot_silence_ms + CFG.frame_ms
    assert end_frame == ask_frame
    assert ended == TurnEnded("agreed", arrival(last_loud), silence_ms(ask_frame, last_loud))
    assert driver.endpointing.phase is Phase.IDLE


def test_fallback_ends_the_turn_whatever_the_model_says() -> None:
    driver = Driver(Endpointing(CFG), answer=0.01)
    driver.feed(speech(640))
    last_loud = driver.index
    driver.feed(silence(2000))
    end_frame, ended = single(driver, TurnEnded)
    assert isinstance(ended, TurnEnded)
    assert ended.reason == "fallback" and ended.last_speech_arrival == pytest.approx(arrival(last_loud))
    assert CFG.eot_fallback_ms <= ended.silence_ms < CFG.eot_fallback_ms + CFG.frame_ms
    assert ended.silence_ms == silence_ms(end_frame, last_loud)


def test_recheck_cadence_follows_the_schedule() -> None:
    driver = Driver(Endpointing(CFG), answer=0.2)
    driver.feed(speech(640))
    last_loud = driver.index
    driver.feed(silence(CFG.eot_fallback_ms))
    asked = [silence_ms(frame, last_loud) for frame, _ in driver.of(AskEndOfTurn)]
    due = list(range(CFG.eot_silence_ms, CFG.eot_fallback_ms, CFG.eot_recheck_ms))
    assert len(asked) == len(due) == 5  # 224, 424, 624, 824, 1024 ms, then the 1200 ms fallback
    for ms, due_ms in zip(asked, due, strict=True):
        assert due_ms <= ms < due_ms + CFG.frame_ms
    assert [e.reason for _, e in driver.of(TurnEnded) if isinstance(e, TurnEnded)] == ["fallback"]


def test_one_question_at_a_time_and_a_slow_answer_does_not_shift_the_schedule() -> None:
    config = EndpointingConfig(eot_fallback_ms=1200, ask_lead_ms=0)  # room for a fourth due time (224 + 3 * 200 ms)
    endpointing = Endpointing(config)
    driver = Driver(endpointing)  # no automatic answers
    driver.feed(speech(640))
    last_loud = driver.index
    driver.feed(silence(config.eot_silence_ms + 2 * config.eot_recheck_ms))
    (_, first), = driver.of(AskEndOfTurn)  # unanswered: no second question stacked on it
    assert isinstance(first, AskEndOfTurn) and endpointing.asking
    assert endpointing.on_answer(first.ask_id, 0.1) == []
    assert not endpointing.asking
    events = driver.feed(silence(32))
    assert [type(e) for e in events] == [AskEndOfTurn], "asked again at once: the next check was overdue"
    late = events[0]
    assert isinstance(late, AskEndOfTurn)
    late_ms = silence_ms(driver.index, last_loud)
    assert endpointing.on_answer(first.ask_id, 0.99) == [], "an answered question cannot be answered again"
    assert endpointing.on_answer(late.ask_id, 0.1) == []
    driver.feed(silence(config.eot_fallback_ms - round(late_ms) - 32))
    *_, (third_frame, third) = driver.of(AskEndOfTurn)
    assert isinstance(third, AskEndOfTurn) and third.ask_id != late.ask_id
    due = config.eot_silence_ms + 3 * config.eot_recheck_ms  # the schedule, not the late answer + recheck
    assert due < late_ms + config.eot_recheck_ms, "the two schedules differ"
    assert due <= silence_ms(third_frame, last_loud) < due + config.frame_ms


def test_a_failed_answer_lets_the_next_question_be_asked_on_schedule() -> None:
    endpointing = Endpointing(CFG)
    driver = Driver(endpointing)
    driver.feed(speech(640))
    last_loud = driver.index
    driver.feed(silence(CFG.eot_silence_ms))
    (_, first), = driver.of(AskEndOfTurn)
    assert isinstance(first, AskEndOfTurn)
    endpointing.on_failed_answer(first.ask_id)
    assert not endpointing.asking
    driver.feed(silence(CFG.eot_recheck_ms))
    (_, _), (second_frame, second) = driver.of(AskEndOfTurn)
    assert isinstance(second, AskEndOfTurn) and second.ask_id != first.ask_id
    due = CFG.eot_silence_ms + CFG.eot_recheck_ms
    assert due <= silence_ms(second_frame, last_loud) < due + CFG.frame_ms, "on schedule, not at once"
    assert endpointing.on_answer(first.ask_id, 0.99) == [], "the failed question's answer is stale"
    endpointing.on_failed_answer(first.ask_id)  # stale too: the pending question stays pending
    assert endpointing.asking
    ended = endpointing.on_answer(second.ask_id, 0.99)
    assert [type(e) for e in ended] == [TurnEnded]


# ---------- asking early (ask_lead_ms) ----------
# (lead ms, the model's answer) -> (the silences asked about, the reason and silence the turn ends at)
ASKED_EARLY = [
    (96, 0.9, [224], ("agreed", 224)),  # asked at ~128 ms about 224: still ends at 224, not before
    (96, 0.1, [224, 424, 624, 824, 1024], ("fallback", 1200)),  # every recheck asked early too
    (224, 0.9, [224], ("agreed", 224)),  # the whole wait: asked at the first silent frame
    (0, 0.9, [224], ("agreed", 224)),  # no lead: asked on the silence itself, nothing added
]


@pytest.mark.parametrize(("lead_ms", "answer", "asked_about", "ended"), ASKED_EARLY)
def test_an_early_question_is_about_the_silence_due_and_the_turn_still_ends_on_it(
        lead_ms: int, answer: float, asked_about: list[int], ended: tuple[EndReason, int]) -> None:
    config = EndpointingConfig(ask_lead_ms=lead_ms)
    driver = Driver(Endpointing(config), answer=answer)
    driver.feed(speech(640))
    last_loud = driver.index
    driver.feed(silence(1400))
    asks = [(silence_ms(frame, last_loud), e) for frame, e in driver.of(AskEndOfTurn) if isinstance(e, AskEndOfTurn)]
    assert [round(at + e.pad_ms) for at, e in asks] == [pytest.approx(ms, abs=config.frame_ms) for ms in asked_about]
    for (at, e), due in zip(asks, asked_about, strict=True):
        assert due - lead_ms <= at < max(due - lead_ms, config.frame_ms) + config.frame_ms, "asked early"
        assert at + e.pad_ms >= due, "the padding reaches the silence asked about"
    (_, end), = driver.of(TurnEnded)
    assert isinstance(end, TurnEnded)
    reason, at_ms = ended
    assert end.reason == reason and at_ms <= end.silence_ms < at_ms + config.frame_ms


def test_speech_after_an_early_question_voids_its_answer() -> None:
    endpointing = Endpointing(EndpointingConfig(ask_lead_ms=96))
    driver = Driver(endpointing)
    driver.feed(speech(640) + silence(160))  # asked at ~128 ms of silence about 224
    (_, ask), = driver.of(AskEndOfTurn)
    assert isinstance(ask, AskEndOfTurn) and ask.pad_ms > 0
    assert endpointing.on_answer(ask.ask_id, 0.99) == [], "a 'complete' before the silence it is about: held"
    assert [type(e) for e in driver.feed(speech(96))] == [SpeechResumed]
    driver.feed(silence(96))
    assert driver.of(TurnEnded) == [], "the held 'complete' went with the pause it was about"


def test_the_lead_cannot_exceed_the_silence_it_shortens() -> None:
    with pytest.raises(ValueError, match="ask_lead_ms"):
        EndpointingConfig(ask_lead_ms=300)


def test_without_an_answer_no_question_is_asked_until_the_fallback() -> None:
    driver = Driver(Endpointing(CFG))
    driver.feed(speech(640) + silence(CFG.eot_fallback_ms))
    assert len(driver.of(AskEndOfTurn)) == 1
    assert [e.reason for _, e in driver.of(TurnEnded) if isinstance(e, TurnEnded)] == ["fallback"]


def test_resumed_speech_discards_a_pending_question() -> None:
    endpointing = Endpointing(CFG)
    driver = Driver(endpointing)
    driver.feed(speech(640) + silence(CFG.eot_silence_ms))
    (_, ask), = driver.of(AskEndOfTurn)
    assert isinstance(ask, AskEndOfTurn)
    events = driver.feed(speech(96))
    assert [type(e) for e in events] == [SpeechResumed]
    assert endpointing.on_answer(ask.ask_id, 0.99) == [], "a late 'complete' is ignored"
    assert endpointing.phase is Phase.SPEAKING
    last_loud = driver.index
    driver.feed(silence(CFG.eot_silence_ms))
    _, (second_frame, second) = driver.of(AskEndOfTurn)
    assert isinstance(second, AskEndOfTurn) and second.ask_id != ask.ask_id
    assert second_frame == last_loud + CFG.frames(CFG.eot_silence_ms), "the schedule restarts with the pause"
    ended = endpointing.on_answer(second.ask_id, 0.99)
    assert ended == [TurnEnded("agreed", arrival(last_loud), silence_ms(second_frame, last_loud))]


def test_an_answer_after_the_turn_ended_is_ignored() -> None:
    endpointing = Endpointing(CFG)
    driver = Driver(endpointing)
    driver.feed(speech(640) + silence(CFG.eot_fallback_ms))
    (_, ask), = driver.of(AskEndOfTurn)
    assert isinstance(ask, AskEndOfTurn)
    assert [e.reason for _, e in driver.of(TurnEnded) if isinstance(e, TurnEnded)] == ["fallback"]
    assert endpointing.on_answer(ask.ask_id, 0.99) == []
    assert endpointing.phase is Phase.IDLE


def test_silence_only_mode_ends_on_its_own_hangover() -> None:
    config = EndpointingConfig(silence_only_ms=480, model_enabled=False)
    driver = Driver(Endpointing(config))
    driver.feed(speech(640))
    last_loud = driver.index
    driver.feed(silence(1000))
    assert driver.of(AskEndOfTurn) == []
    end_frame, ended = single(driver, TurnEnded)
    assert isinstance(ended, TurnEnded)
    assert ended.reason == "silence" and ended.last_speech_arrival == pytest.approx(arrival(last_loud))
    assert config.silence_only_ms <= ended.silence_ms < config.silence_only_ms + config.frame_ms
    assert ended.silence_ms == silence_ms(end_frame, last_loud)


def test_durations_count_audio_not_arrival_times() -> None:
    endpointing = Endpointing(CFG)
    burst: list[Event] = []
    for index, (prob, loudness) in enumerate(speech(640) + silence(CFG.eot_fallback_ms)):
        burst += endpointing.on_frame(index, 5.0, prob, loudness)  # one burst: every frame arrives at once
    assert [type(e) for e in burst] == [Onset, SpeechStarted, SilenceStarted, AskEndOfTurn, TurnEnded]
    ended = burst[-1]
    assert isinstance(ended, TurnEnded) and ended.reason == "fallback"
    assert CFG.eot_fallback_ms <= ended.silence_ms < CFG.eot_fallback_ms + CFG.frame_ms
    assert ended.last_speech_arrival == 5.0


def test_a_new_turn_can_start_after_one_ends() -> None:
    driver = Driver(Endpointing(CFG), answer=0.9)
    driver.feed(speech(640) + silence(400))
    first_end = driver.index - frames(400)
    driver.feed(speech(640) + silence(400))
    second_end = driver.index - frames(400)
    assert len(driver.of(SpeechStarted)) == 2
    assert [e.last_speech_arrival for _, e in driver.of(TurnEnded) if isinstance(e, TurnEnded)] == [
        pytest.approx(arrival(first_end)), pytest.approx(arrival(second_end))]


def test_reset_forgets_the_turn() -> None:
    endpointing = Endpointing(CFG)
    driver = Driver(endpointing)
    driver.feed(speech(640) + silence(CFG.eot_silence_ms))
    (_, ask), = driver.of(AskEndOfTurn)
    assert isinstance(ask, AskEndOfTurn)
    assert endpointing.phase is Phase.PAUSING and endpointing.asking
    endpointing.reset()
    assert endpointing.phase is Phase.IDLE and not endpointing.asking
    assert endpointing.on_answer(ask.ask_id, 0.99) == []
    assert driver.feed(silence(1000)) == [], "no silence-started, question or end for a turn it forgot"


# ---------- the end of speech, dated by its sound ----------
def test_the_end_of_speech_is_dated_by_loudness_not_by_the_vads_lag() -> None:
    driver = Driver(Endpointing(CFG), answer=0.9)
    driver.feed(speech(320))  # frames 0-9, loud
    last_loud = driver.index
    driver.feed(speech(96, loudness=QUIET))  # frames 10-12: the VAD still says speech, but nothing sounds
    vad_last = driver.index
    driver.feed(silence(1000))
    silence_frame, silenced = single(driver, SilenceStarted)
    assert silence_frame == vad_last + 1, "the VAD's transition still starts the pause"
    assert silenced == SilenceStarted(arrival(last_loud))
    ask_frame, _ = single(driver, AskEndOfTurn)
    assert ask_frame == last_loud + CFG.frames(CFG.eot_silence_ms) == 16
    assert ask_frame < vad_last + CFG.frames(CFG.eot_silence_ms), "sooner than counting from the VAD"
    assert driver.of(TurnEnded) == [(ask_frame, TurnEnded("agreed", arrival(last_loud), CFG.eot_silence_ms))]


def test_the_fallback_is_also_counted_from_the_sound() -> None:
    config = EndpointingConfig(eot_fallback_ms=800, ask_lead_ms=0)  # a whole number of 32 ms frames
    driver = Driver(Endpointing(config), answer=0.0)
    driver.feed(speech(320) + speech(96, loudness=QUIET) + silence(1200))
    end_frame, ended = single(driver, TurnEnded)
    assert end_frame == 9 + config.frames(config.eot_fallback_ms)
    assert ended == TurnEnded("fallback", arrival(9), config.eot_fallback_ms)


def test_the_end_is_dated_to_the_last_loud_sub_block() -> None:
    driver = Driver(Endpointing(CFG), answer=0.9)
    driver.feed(speech(320))  # frames 0-9
    driver.feed([(SPEECH, (4000.0, 4000.0, 10.0, 10.0))])  # frame 10: sound stops after its 2nd sub-block
    driver.feed(speech(64, loudness=QUIET) + silence(1000))
    sound_end = arrival(10) - 2 * 128 / CFG.rate
    (_, silenced), = driver.of(SilenceStarted)
    assert isinstance(silenced, SilenceStarted)
    assert silenced.last_speech_arrival == pytest.approx(sound_end)
    assert silenced.last_speech_arrival == pytest.approx(arrival(10) - 2 * SUB_S)
    # 224 ms after a sound end 256 samples before frame 10's end: 17.5 frames later, so frame 17 (240 ms)
    ask_frame, _ = single(driver, AskEndOfTurn)
    assert ask_frame == 17
    (_, ended), = driver.of(TurnEnded)
    assert isinstance(ended, TurnEnded)
    assert ended.last_speech_arrival == pytest.approx(sound_end)
    assert ended.silence_ms == pytest.approx(((17 + 1) * 512 - (11 * 512 - 256)) / 16)


@pytest.mark.parametrize(("tail", "counts"), [(2.0, True), (0.6, False)])
def test_a_quiet_tail_is_sound_relative_to_the_runs_peak(tail: float, counts: bool) -> None:
    """A tail at `tail` x loud_ratio of the peak: with the default 0.01, 2 % of the peak counts, 0.6 % not."""
    peak = 30_000.0
    level = tail * CFG.loud_ratio * peak
    assert level >= CFG.loud_floor, "above the absolute floor: only the ratio can exclude it"
    driver = Driver(Endpointing(CFG))
    driver.feed(speech(320, loudness=(peak,) * 4))  # frames 0-9
    driver.feed(speech(32, loudness=(level,) * 4))  # frame 10: the tail
    driver.feed(speech(32, loudness=QUIET) + silence(200))  # frame 11 still voiced, then silence
    (_, silenced), = driver.of(SilenceStarted)
    assert silenced == SilenceStarted(arrival(10 if counts else 9))


def test_loud_ratio_is_configurable() -> None:
    driver = Driver(Endpointing(EndpointingConfig(loud_ratio=0.05)))
    driver.feed(speech(320, loudness=(20_000.0,) * 4) + speech(32, loudness=(400.0,) * 4) + silence(200))
    (_, silenced), = driver.of(SilenceStarted)
    assert silenced == SilenceStarted(arrival(9)), "2 % of the peak is not sound at loud_ratio 0.05"


def test_the_peak_is_each_runs_own() -> None:
    driver = Driver(Endpointing(CFG), answer=0.9)
    driver.feed(speech(320, loudness=(20_000.0,) * 4) + silence(400))  # a loud turn, ended
    start = driver.index + 1
    # a soft-spoken turn: its tail (20 % of its own peak) is sound, though 1 % of the last turn's peak
    driver.feed(speech(320, loudness=(1000.0,) * 4) + speech(32, loudness=(200.0,) * 4) + silence(400))
    _, (_, second) = driver.of(SilenceStarted)
    assert second == SilenceStarted(arrival(start + 10))


def test_a_lost_onsets_loudness_does_not_carry_into_the_next_run() -> None:
    driver = Driver(Endpointing(CFG))
    driver.feed(speech(32, loudness=(20_000.0,) * 4) + silence(96))  # a loud click: Onset, OnsetLost
    start = driver.index + 1
    driver.feed(speech(320, loudness=(1000.0,) * 4) + speech(32, loudness=(200.0,) * 4) + silence(200))
    assert driver.kinds()[:3] == [Onset, OnsetLost, Onset]
    (_, silenced), = driver.of(SilenceStarted)
    assert silenced == SilenceStarted(arrival(start + 10)), "the tail is 20 % of this run's peak, 1 % of the click"


def test_with_nothing_loud_the_vads_last_voiced_frame_dates_the_end() -> None:
    driver = Driver(Endpointing(CFG), answer=0.9)
    driver.feed(speech(256, loudness=(80.0,) * 4))  # frames 0-7: below loud_floor throughout
    driver.feed(speech(96, loudness=(2.0,) * 4))  # frames 8-10: 2.5 % of the run's peak, still voiced
    driver.feed(silence(1000))
    vad_last = 10
    (_, silenced), = driver.of(SilenceStarted)
    assert silenced == SilenceStarted(arrival(vad_last))
    ask_frame, _ = single(driver, AskEndOfTurn)
    assert ask_frame == vad_last + CFG.frames(CFG.eot_silence_ms)
    (_, ended), = driver.of(TurnEnded)
    assert ended == TurnEnded("agreed", arrival(vad_last), CFG.eot_silence_ms)


def test_once_something_is_loud_quiet_frames_no_longer_move_the_end() -> None:
    driver = Driver(Endpointing(CFG))
    driver.feed(speech(96, loudness=(50.0,) * 4))  # frames 0-2: dated by the VAD while nothing is loud
    driver.feed(speech(64))  # frames 3-4: loud
    driver.feed(speech(96, loudness=(50.0,) * 4) + silence(100))  # frames 5-7: quiet again
    (_, silenced), = driver.of(SilenceStarted)
    assert silenced == SilenceStarted(arrival(4))


# ---------- configuration ----------
def test_config_validation() -> None:
    with pytest.raises(ValueError, match="vad_exit_threshold"):
        EndpointingConfig(vad_threshold=0.3, vad_exit_threshold=0.4)
    with pytest.raises(ValueError, match="eot_fallback_ms"):
        EndpointingConfig(eot_silence_ms=800, eot_fallback_ms=800)
    with pytest.raises(ValueError, match="eot_recheck_ms"):
        EndpointingConfig(eot_recheck_ms=0)
    with pytest.raises(ValueError, match="frame_samples"):
        EndpointingConfig(frame_samples=0)
    for bad in ({"loud_ratio": 0.0}, {"loud_ratio": 1.5}, {"loud_floor": -1.0}):
        with pytest.raises(ValueError, match="loud_ratio"):
            EndpointingConfig(**bad)  # type: ignore[arg-type]
    assert EndpointingConfig(vad_threshold=0.4, vad_exit_threshold=0.4).vad_exit_threshold == 0.4
    assert CFG.frame_ms == 32 and CFG.frames(224) == 7 and CFG.frames(0) == 1


def test_a_tiny_vad_threshold_keeps_its_exit_threshold_at_or_below_it() -> None:
    config = PolicyConfig.from_settings(Settings(vad_threshold=0.005), model_enabled=True).endpointing
    assert config.vad_exit_threshold == config.vad_threshold == 0.005


@pytest.mark.parametrize("model_enabled", [True, False])
def test_policy_config_carries_every_endpointing_setting(model_enabled: bool) -> None:
    settings = Settings(vad_threshold=0.6, vad_exit_margin=0.25, vad_min_speech_ms=96, vad_preroll_ms=320,
                        eot_silence_ms=96, eot_threshold=0.7, eot_recheck_ms=150, eot_fallback_ms=700,
                        silence_only_ms=320, eot_ask_lead_ms=32)
    config = PolicyConfig.from_settings(settings, model_enabled=model_enabled).endpointing
    assert config.vad_exit_threshold == pytest.approx(0.35), "vad_exit_margin is used, not a fixed 0.15"
    assert config == EndpointingConfig(
        vad_threshold=0.6, vad_exit_threshold=config.vad_exit_threshold, vad_min_speech_ms=96, vad_preroll_ms=320,
        eot_silence_ms=96, eot_threshold=0.7, eot_recheck_ms=150, eot_fallback_ms=700, silence_only_ms=320,
        ask_lead_ms=32, model_enabled=model_enabled, words_enabled=True, max_wait_ms=Settings().eot_max_wait_ms,
        words_finished_at=Settings().eot_words_finished, words_unfinished_below=Settings().eot_words_unfinished)


def test_policy_config_floors_the_exit_threshold() -> None:
    config = PolicyConfig.from_settings(Settings(vad_threshold=0.3, vad_exit_margin=0.5), model_enabled=True)
    assert config.endpointing.vad_exit_threshold == 0.01
    default = PolicyConfig.from_settings(Settings(), model_enabled=True).endpointing
    assert default.vad_exit_threshold == pytest.approx(Settings().vad_threshold - Settings().vad_exit_margin)


# ---------- the words' say (words_enabled): how long the evidence asks to wait ----------
WORDS = EndpointingConfig(words_enabled=True)
FINISHED, UNSURE, CUT = 0.95, 0.3, 0.02  # P(finished) of the pause's words: above, between, below the bounds


def test_with_words_a_complete_model_answer_waits_for_them_then_ends_the_turn() -> None:
    endpointing = Endpointing(WORDS)
    driver = Driver(endpointing, answer=0.9)
    driver.feed(speech(320) + silence(400))
    assert not driver.of(TurnEnded), "the model said complete, but the words are not in yet"
    (ended,) = endpointing.on_words(FINISHED)
    assert isinstance(ended, TurnEnded) and ended.reason == "agreed"


@pytest.mark.parametrize(("words", "model", "reason", "waited_ms"), [
    (FINISHED, 0.9, "agreed", WORDS.eot_silence_ms),  # both say finished: at the model's first answer
    (FINISHED, 0.1, "fallback", WORDS.eot_fallback_ms),  # they disagree: the patient fallback
    (UNSURE, 0.9, "fallback", WORDS.eot_fallback_ms),  # words in between: the fallback
    (CUT, 0.99, "ceiling", WORDS.max_wait_ms),  # cut mid-sentence: up to the ceiling, whatever the model says
    (None, 0.9, "fallback", WORDS.eot_fallback_ms),  # no words to read (the recognizer heard none): the fallback
], ids=["finished+complete", "finished+incomplete", "unsure", "cut", "no-words"])
def test_the_silence_a_pause_needs_follows_the_evidence(words: float | None, model: float, reason: str,
                                                        waited_ms: float) -> None:
    endpointing = Endpointing(WORDS)
    driver = Driver(endpointing, answer=model)
    driver.feed(speech(320))
    last_loud = driver.index
    driver.feed(silence(64))  # the speculative final is back early in the pause
    driver.log += [(driver.index, e) for e in endpointing.on_words(words)]
    driver.feed(silence(3000))
    ((frame, ended),) = driver.of(TurnEnded)
    assert isinstance(ended, TurnEnded) and ended.reason == reason
    assert waited_ms <= silence_ms(frame, last_loud) < waited_ms + WORDS.frame_ms


def test_while_the_words_alone_decide_the_model_is_not_asked() -> None:
    endpointing = Endpointing(WORDS)
    driver = Driver(endpointing, answer=0.99)
    driver.feed(speech(320) + silence(64))
    endpointing.on_words(CUT)
    driver.feed(silence(2000))
    assert not driver.of(AskEndOfTurn), "cut mid-sentence: no answer of the model could end it sooner"


def test_words_from_before_speech_resumed_say_nothing_of_the_next_pause() -> None:
    endpointing = Endpointing(WORDS)
    driver = Driver(endpointing)
    driver.feed(speech(320) + silence(96))
    endpointing.on_words(CUT)
    driver.feed(speech(200))  # the speaker went on: that final is void
    driver.answer = 0.9
    driver.feed(silence(400))
    assert not driver.of(TurnEnded), "the new pause's words are awaited"
    assert endpointing.on_words(FINISHED)


def test_words_in_no_pause_are_ignored() -> None:
    endpointing = Endpointing(WORDS)
    assert endpointing.on_words(FINISHED) == []
    Driver(endpointing).feed(speech(320))
    assert endpointing.on_words(FINISHED) == []


@pytest.mark.parametrize(("reason", "patience_ms"), [
    ("agreed", 0.0),  # the shortest end of turn: nothing waited for the caller
    ("fallback", CFG.eot_fallback_ms - CFG.eot_silence_ms),
    ("ceiling", CFG.max_wait_ms - CFG.eot_silence_ms),
    ("silence", 0.0),
])
def test_the_patience_of_an_end_is_the_silence_waited_past_the_shortest(reason: EndReason, patience_ms: float) -> None:
    assert Endpointing(CFG).patience_ms(reason) == patience_ms
