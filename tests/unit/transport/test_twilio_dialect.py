"""The Twilio Media Streams dialect on Twilio's published message formats."""

from __future__ import annotations

import json

import numpy as np
import pytest

from alice_voice.errors import InvalidMessage
from alice_voice.transport.media_socket import MarkPlayed
from alice_voice.transport.twilio_dialect import StreamStart, TwilioDialect

SPEECH = np.full(160, 3000, np.int16)
SILENCE = np.zeros(160, np.int16)


def dialect() -> TwilioDialect:
    return TwilioDialect(StreamStart("MZ1", "CA1", {"From": "+1555"}))


def sent(messages: list[str | bytes]) -> list[dict[str, object]]:
    return [json.loads(m) for m in messages]


def mark(name: str) -> str:
    return json.dumps({"event": "mark", "streamSid": "MZ1", "mark": {"name": name}})


def test_every_frame_of_speech_is_followed_by_a_mark_named_by_its_number() -> None:
    d = dialect()
    assert [m["event"] for m in sent(d.audio(SILENCE))] == ["media"]
    out = sent(d.audio(SPEECH))
    assert [m["event"] for m in out] == ["media", "mark"] and out[1]["mark"] == {"name": "2"}
    assert d.inbound(mark("2")) == [MarkPlayed(2)]


@pytest.mark.parametrize("event", [{"type": "turn.state", "state": "paused"},
                                   {"type": "tts.stopped", "reason": "barge_in", "heard": ""},
                                   {"type": "tts.stopped", "reason": "stop_request", "heard": ""}])
def test_a_pause_or_a_cut_clears_what_twilio_holds(event: dict[str, object]) -> None:
    assert sent(dialect().event(event)) == [{"event": "clear", "streamSid": "MZ1"}]


@pytest.mark.parametrize("event", [{"type": "turn.state", "state": "speaking"},
                                   {"type": "tts.stopped", "reason": "done", "heard": "x"}])
def test_other_events_are_not_sent_to_twilio(event: dict[str, object]) -> None:
    assert dialect().event(event) == []


def test_marks_that_a_clear_dropped_are_not_taken_as_played() -> None:
    """Twilio echoes every mark a `clear` dropped, unplayed."""
    d = dialect()
    for _ in range(5):
        d.audio(SPEECH)
    d.event({"type": "turn.state", "state": "paused"})
    assert [d.inbound(mark(str(n))) for n in (3, 4, 5)] == [[], [], []]
    d.audio(SPEECH)
    assert d.inbound(mark("6")) == [MarkPlayed(6)]
    assert d.inbound(mark("not-ours")) == []


@pytest.mark.parametrize("message", ["[" * 5000, json.dumps({"event": "media"}), "x" * 20_000, b"\x00"])
def test_malformed_messages_are_invalid(message: str | bytes) -> None:
    with pytest.raises(InvalidMessage):
        dialect().inbound(message)


def test_a_second_start_is_invalid() -> None:
    start = {"event": "start", "start": {"streamSid": "MZ2", "callSid": "CA2"}}
    with pytest.raises(InvalidMessage, match="a second start"):
        dialect().inbound(json.dumps(start))
