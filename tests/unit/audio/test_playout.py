from __future__ import annotations

from itertools import count

import numpy as np

from alice_voice.audio.playout import SENT_KEPT, Mark, Playout, ToneSource
from alice_voice.audio.tone import ToneGenerator

TICK_S = 0.02


def pcm(ms: int, value: int = 1000) -> np.ndarray:
    return np.full(48 * ms, value, dtype=np.int16)


class Wire:
    """Takes frames from a playout once per tick with increasing send times, and records its marks."""

    def __init__(self, playout: Playout, start: float = 100.0) -> None:
        self.playout = playout
        self.marks: list[Mark] = []
        self._ticks = count()
        self._start = start
        self.last_sent_at = start
        playout.on_mark = self.marks.append

    def next(self) -> np.ndarray:
        self.last_sent_at = self._start + next(self._ticks) * TICK_S
        return self.playout.next_frame(self.last_sent_at)

    def kinds(self) -> list[tuple[int, str, bool]]:
        return [(m.reply_id, m.kind, m.started) for m in self.marks]


def test_idle_playout_is_silence() -> None:
    wire = Wire(Playout())
    frame = wire.next()
    assert not frame.any() and len(frame) == 960
    assert wire.marks == []


def test_reply_waits_for_the_jitter_buffer_then_plays_in_order_and_finishes() -> None:
    playout = Playout(buffer_ms=60)
    wire = Wire(playout)
    reply = playout.begin(1)
    playout.push(1, pcm(40, 1), "Hello")
    assert not wire.next().any() and wire.marks == []  # 40 ms < 60 ms buffer
    playout.push(1, pcm(40, 2), "there")
    assert (wire.next() == 1).all() and wire.kinds() == [(1, "first_frame", True)]
    assert (wire.next() == 1).all()
    assert (wire.next() == 2).all()
    playout.end(1)
    assert (wire.next() == 2).all()
    assert not wire.next().any()
    assert wire.kinds() == [(1, "first_frame", True), (1, "finished", True)]
    assert playout.reply is None and not playout.playing
    assert reply.sent == reply.queued == 48 * 80
    assert reply.heard_text() == "Hello there"


def test_marks_carry_the_send_time_passed_in() -> None:
    marks: list[Mark] = []
    playout = Playout(buffer_ms=40, on_mark=marks.append)
    playout.begin(4)
    playout.push(4, pcm(40, 7), "Hi there")
    playout.end(4)
    playout.next_frame(12.5)
    playout.next_frame(12.52)
    playout.next_frame(13.75)  # a late tick: the mark carries whatever time the track gives
    assert marks == [Mark(4, "first_frame", True, 12.5), Mark(4, "finished", True, 13.75)]
    playout.begin(5)
    playout.push(5, pcm(100, 8), "cut short")
    playout.next_frame(20.0)
    playout.flush()
    playout.next_frame(20.02)
    assert marks[2:] == [Mark(5, "first_frame", True, 20.0), Mark(5, "silenced", True, 20.02)]


def test_end_pads_the_last_partial_frame_and_a_short_reply_still_plays() -> None:
    playout = Playout(buffer_ms=60)
    wire = Wire(playout)
    reply = playout.begin(7)
    playout.push(7, pcm(10, 5), "Hi")
    playout.end(7)
    frame = wire.next()
    assert (frame[:480] == 5).all() and not frame[480:].any()
    assert reply.sent == 480


def test_a_reply_that_ends_with_no_audio_finishes_unstarted() -> None:
    playout = Playout(buffer_ms=60)
    wire = Wire(playout)
    playout.begin(3)
    playout.end(3)
    assert not wire.next().any()
    assert wire.kinds() == [(3, "finished", False)]


def test_flush_cuts_at_once_and_reports_what_was_heard() -> None:
    playout = Playout(buffer_ms=40)
    wire = Wire(playout)
    reply = playout.begin(1)
    playout.push(1, pcm(100, 3), "one two three four five")
    playout.push(1, pcm(100, 4), "six seven eight nine ten")
    for _ in range(6):
        wire.next()
    cut = playout.flush()
    assert cut is reply and reply.sent == 6 * 960
    assert reply.heard_text() == "one two three four five six"
    assert not wire.next().any() and not playout.playing
    assert wire.kinds() == [(1, "first_frame", True), (1, "silenced", True)]
    assert wire.marks[-1].at == wire.last_sent_at  # the first silent frame after the cut


def test_begin_drops_the_previous_reply() -> None:
    playout = Playout(buffer_ms=40)
    wire = Wire(playout)
    playout.begin(1)
    playout.push(1, pcm(200, 1), "old")
    playout.begin(2)
    playout.push(2, pcm(40, 2), "new")
    assert (wire.next() == 2).all()
    assert wire.kinds() == [(2, "first_frame", True)]  # reply 1 never started: nothing to silence


def test_audio_of_a_reply_that_is_no_longer_current_is_dropped() -> None:
    playout = Playout(buffer_ms=40)
    wire = Wire(playout)
    playout.begin(1)
    playout.push(1, pcm(100, 1), "old reply")
    reply = playout.begin(2)
    playout.push(1, pcm(100, 1), "late audio of the old reply")  # its producer had not seen the cut yet
    playout.end(1)  # ... nor does its end close the new reply
    assert reply.queued == 0 and reply.segments == [] and not reply.ended
    playout.push(2, pcm(40, 2), "new")
    assert not reply.ended
    for _ in range(2):
        assert (wire.next() == 2).all()
    assert not wire.next().any()  # nothing left but the reply is not over: no mark yet
    assert wire.kinds() == [(2, "first_frame", True)]
    playout.end(2)
    assert not wire.next().any()
    assert wire.kinds() == [(2, "first_frame", True), (2, "finished", True)]
    assert reply.heard_text() == "new"


def test_audio_for_an_idle_playout_or_a_finished_reply_is_dropped() -> None:
    playout = Playout(buffer_ms=40)
    wire = Wire(playout)
    playout.push(9, pcm(100, 9), "nobody asked")
    playout.end(9)
    assert not wire.next().any() and wire.marks == []
    reply = playout.begin(9)
    playout.push(9, pcm(40, 5), "done")
    playout.end(9)
    playout.push(9, pcm(40, 6), "after the end")
    assert reply.queued == 48 * 40
    assert (wire.next() == 5).all() and (wire.next() == 5).all() and not wire.next().any()
    assert wire.kinds() == [(9, "first_frame", True), (9, "finished", True)]


def test_sent_keeps_the_last_frames_handed_out_with_their_send_times() -> None:
    playout = Playout(buffer_ms=40)
    playout.begin(1)
    playout.push(1, np.arange(48 * 20 * (SENT_KEPT + 10), dtype=np.int16), "a long one")
    times = [50.0 + i * TICK_S for i in range(SENT_KEPT + 10)]
    handed = [playout.next_frame(t) for t in times]
    assert SENT_KEPT == 50 and len(playout.sent) == SENT_KEPT
    assert [t for t, _ in playout.sent] == times[-SENT_KEPT:]
    for (_, kept), frame in zip(playout.sent, handed[-SENT_KEPT:], strict=True):
        np.testing.assert_array_equal(kept, frame)
    playout.flush()
    playout.next_frame(99.0)  # silence is sent too: the echo guard learns the output went quiet
    sent_at, frame = playout.sent[-1]
    assert sent_at == 99.0 and not frame.any() and len(playout.sent) == SENT_KEPT


def test_tone_source_stops() -> None:
    tone = ToneSource(ToneGenerator().next_frame)
    assert np.abs(tone.next_frame(0.0)).max() > 5000
    assert tone.stop() is True and tone.stop() is False
    assert not tone.next_frame(0.02).any()


def test_tone_has_continuous_phase() -> None:
    gen = ToneGenerator(hz=440)
    joined = np.concatenate([gen.next_frame() for _ in range(5)]).astype(float)
    # A phase jump would show as a step far larger than the sine's largest per-sample change.
    max_step = 2 * np.pi * 440 / 48000 * 0.3 * 32767
    assert np.abs(np.diff(joined)).max() <= max_step + 2


def test_a_held_reply_queues_silently_until_released() -> None:
    playout = Playout(buffer_ms=40)
    wire = Wire(playout)
    playout.begin(3, held=True)
    playout.push(3, pcm(100, 9), "ready")
    assert not wire.next().any() and wire.marks == []
    playout.release(2)  # another reply's release does nothing
    assert not wire.next().any()
    playout.release(3)
    assert (wire.next() == 9).all() and wire.kinds() == [(3, "first_frame", True)]


def test_pause_silences_at_once_keeps_the_queue_and_reports_the_silence_once() -> None:
    playout = Playout(buffer_ms=40)
    wire = Wire(playout)
    reply = playout.begin(1)
    playout.push(1, pcm(200, 4), "a long reply")
    assert (wire.next() == 4).all()
    playout.pause()
    assert not wire.next().any() and wire.kinds()[1:] == [(1, "silenced", True)]
    assert not wire.next().any() and len(wire.marks) == 2
    playout.resume()  # only a cough: the reply goes on where it stopped
    assert (wire.next() == 4).all() and reply.sent == 2 * 960
    playout.pause()
    wire.next()
    playout.flush()  # confirmed: already silent, so no second report
    wire.next()
    assert wire.kinds() == [(1, "first_frame", True), (1, "silenced", True), (1, "silenced", True)]


def test_text_of_an_empty_push_goes_with_the_next_audio() -> None:
    playout = Playout(buffer_ms=40)
    reply = playout.begin(1)
    playout.push(1, pcm(0), "Hello")
    playout.push(1, pcm(100, 1), "")
    playout.end(1)
    assert reply.segments[0].text == "Hello"


def test_it_says_when_a_reply_becomes_playable_so_an_idle_pacer_need_not_wait_a_tick() -> None:
    playout = Playout(buffer_ms=60)

    def announced() -> bool:  # as the pacer reads it: each time it is read, it is cleared
        said = playout.playable.is_set()
        playout.playable.clear()
        return said

    playout.begin(1)
    playout.push(1, pcm(40), "Hel")
    assert not announced()  # 40 ms < the 60 ms to queue first
    playout.push(1, pcm(40), "lo")
    assert announced()
    playout.begin(2, held=True)
    playout.push(2, pcm(100), "held")
    assert not announced(), "a held reply is not playable"
    playout.release(2)
    assert announced()
    wire = Wire(playout)
    wire.next()  # it started: later audio is not news
    playout.push(2, pcm(100), "more")
    assert not announced()
    playout.begin(3)
    playout.push(3, pcm(20), "short")
    playout.end(3)  # all of it is there, short as it is
    assert announced()


def test_a_pause_and_resume_within_one_tick_report_no_silence() -> None:
    playout = Playout(buffer_ms=40)
    wire = Wire(playout)
    playout.begin(1)
    playout.push(1, pcm(400), "a long reply")
    wire.next()
    playout.pause()
    playout.resume()  # a click: both before the next tick
    assert wire.next().any()
    assert [kind for _, kind, _ in wire.kinds()] == ["first_frame"]


def test_where_the_far_end_confirms_playback_heard_is_what_it_confirmed() -> None:
    playout = Playout(buffer_ms=40)
    wire = Wire(playout)
    playout.confirm_played(0)  # the transport says it will confirm (Twilio's marks)
    reply = playout.begin(1)
    playout.push(1, pcm(100, 1), "one two three four five")
    playout.end(1)
    for _ in range(4):
        wire.next()
    assert reply.sent == 48 * 80 and reply.heard == 0 and reply.heard_text() == ""
    playout.confirm_played(2)  # the far end played two frames (a jitter buffer holds the rest)
    assert reply.heard == 48 * 40 and reply.heard_text() == "one two"
    playout.confirm_played(1)  # an older confirmation changes nothing
    assert reply.heard == 48 * 40


def test_a_pause_takes_back_what_the_far_end_has_not_played_and_resume_sends_it_again() -> None:
    playout = Playout(buffer_ms=40)
    wire = Wire(playout)
    playout.confirm_played(0)
    reply = playout.begin(1)
    playout.push(1, np.concatenate([pcm(20, v) for v in range(1, 7)]), "a b c d e f")
    playout.end(1)
    assert [int(wire.next()[0]) for _ in range(4)] == [1, 2, 3, 4]
    playout.confirm_played(2)
    playout.pause()  # frames 3 and 4 are in the far end's buffer, which the transport clears
    assert not wire.next().any()
    assert reply.sent == reply.heard == 48 * 40
    playout.resume()
    assert [int(wire.next()[0]) for _ in range(4)] == [3, 4, 5, 6], "from where the listener stopped hearing"


def test_without_confirmations_a_pause_takes_nothing_back() -> None:
    playout = Playout(buffer_ms=40)
    wire = Wire(playout)
    reply = playout.begin(1)
    playout.push(1, np.concatenate([pcm(20, v) for v in range(1, 5)]), "a b c d")
    playout.end(1)
    assert [int(wire.next()[0]) for _ in range(2)] == [1, 2]
    playout.pause()
    playout.resume()
    assert [int(wire.next()[0]) for _ in range(2)] == [3, 4]
    assert reply.heard == reply.sent == 48 * 80
