from __future__ import annotations

import numpy as np

from alice_voice.audio.playout import Playout, ToneSource
from alice_voice.audio.tone import ToneGenerator


def pcm(ms: int, value: int = 1000) -> np.ndarray:
    return np.full(48 * ms, value, dtype=np.int16)


def test_idle_playout_is_silence() -> None:
    playout = Playout()
    assert not playout.next_frame().any() and len(playout.next_frame()) == 960


def test_reply_waits_for_the_jitter_buffer_then_plays_in_order_and_finishes() -> None:
    playout = Playout(buffer_ms=60)
    started, finished = [], []
    playout.on_first_frame = started.append
    playout.on_finished = finished.append
    reply = playout.begin(1)
    playout.push(pcm(40, 1), "Hello")
    assert not playout.next_frame().any() and not started  # 40 ms < 60 ms buffer
    playout.push(pcm(40, 2), "there")
    assert (playout.next_frame() == 1).all() and started == [reply]
    assert (playout.next_frame() == 1).all()
    assert (playout.next_frame() == 2).all()
    playout.end()
    assert (playout.next_frame() == 2).all()
    assert not playout.next_frame().any() and finished == [reply]
    assert reply.sent == reply.queued == 48 * 80
    assert reply.heard_text() == "Hello there"


def test_end_pads_the_last_partial_frame_and_a_short_reply_still_plays() -> None:
    playout = Playout(buffer_ms=60)
    reply = playout.begin(7)
    playout.push(pcm(10, 5), "Hi")
    playout.end()
    frame = playout.next_frame()
    assert (frame[:480] == 5).all() and not frame[480:].any()
    assert reply.sent == 480


def test_flush_cuts_at_once_and_reports_what_was_heard() -> None:
    playout = Playout(buffer_ms=40)
    reply = playout.begin(1)
    playout.push(pcm(100, 3), "one two three four five")
    playout.push(pcm(100, 4), "six seven eight nine ten")
    for _ in range(6):
        playout.next_frame()
    cut = playout.flush()
    assert cut is reply and reply.sent == 6 * 960
    assert reply.heard_text() == "one two three four five six"
    assert not playout.next_frame().any() and not playout.playing


def test_begin_drops_the_previous_reply() -> None:
    playout = Playout(buffer_ms=40)
    playout.begin(1)
    playout.push(pcm(200, 1), "old")
    playout.begin(2)
    playout.push(pcm(40, 2), "new")
    assert (playout.next_frame() == 2).all()


def test_tone_source_stops() -> None:
    tone = ToneSource(ToneGenerator().next_frame)
    assert np.abs(tone.next_frame()).max() > 5000
    assert tone.stop() is True and tone.stop() is False
    assert not tone.next_frame().any()


def test_tone_has_continuous_phase() -> None:
    gen = ToneGenerator(hz=440)
    joined = np.concatenate([gen.next_frame() for _ in range(5)]).astype(float)
    # A phase jump would show as a step far larger than the sine's largest per-sample change.
    max_step = 2 * np.pi * 440 / 48000 * 0.3 * 32767
    assert np.abs(np.diff(joined)).max() <= max_step + 2


def test_a_held_reply_queues_silently_until_released() -> None:
    playout = Playout(buffer_ms=40)
    started: list[object] = []
    playout.on_first_frame = started.append
    playout.begin(3, held=True)
    playout.push(pcm(100, 9), "ready")
    assert not playout.next_frame().any() and not started
    playout.release(2)  # another reply's release does nothing
    assert not playout.next_frame().any()
    playout.release(3)
    assert (playout.next_frame() == 9).all() and len(started) == 1


def test_pause_silences_at_once_keeps_the_queue_and_reports_the_silence_once() -> None:
    playout = Playout(buffer_ms=40)
    silenced: list[object] = []
    playout.on_silenced = silenced.append
    reply = playout.begin(1)
    playout.push(pcm(200, 4), "a long reply")
    assert (playout.next_frame() == 4).all()
    playout.pause()
    assert not playout.next_frame().any() and silenced == [reply]
    assert not playout.next_frame().any() and silenced == [reply]
    playout.resume()  # only a cough: the reply goes on where it stopped
    assert (playout.next_frame() == 4).all() and reply.sent == 2 * 960
    playout.pause()
    playout.next_frame()
    playout.flush()  # confirmed: already silent, so no second report
    playout.next_frame()
    assert silenced == [reply, reply]


def test_text_of_an_empty_push_goes_with_the_next_audio() -> None:
    playout = Playout(buffer_ms=40)
    reply = playout.begin(1)
    playout.push(pcm(0), "Hello")
    playout.push(pcm(100, 1), "")
    playout.end()
    assert reply.segments[0].text == "Hello"
