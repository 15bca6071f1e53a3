from __future__ import annotations

import json

import pytest

from alice_voice.conversation.events import (
    DtmfMessage,
    ErrorEvent,
    SessionReady,
    StopTtsMessage,
    TextMessage,
    TtsStopped,
    parse_client_message,
)
from alice_voice.errors import InvalidMessage


def test_server_events_carry_type_and_server_time() -> None:
    event = SessionReady(session_id="abc", mode="tone").to_dict()
    assert event["type"] == "session.ready" and event["session_id"] == "abc" and event["t"] > 1e12
    assert TtsStopped(reason="barge_in").to_dict()["reason"] == "barge_in"
    assert json.loads(json.dumps(ErrorEvent(code="x", message="y").to_dict()))["code"] == "x"


def test_client_messages_parse() -> None:
    assert isinstance(parse_client_message('{"type": "stop_tts"}'), StopTtsMessage)
    message = parse_client_message(b'{"type": "text", "text": "hello"}')
    assert isinstance(message, TextMessage) and message.text == "hello"
    assert parse_client_message('{"type": "dtmf", "digit": "#"}') == DtmfMessage(type="dtmf", digit="#")


@pytest.mark.parametrize(("raw", "needle"), [
    ("not json", "not JSON"),
    ("[1, 2]", "object"),
    ('{"type": "dance"}', "invalid message"),
    ('{"type": "text"}', "text"),
    ('{"type": "text", "text": ""}', "text"),
    ('{"type": "text", "text": "' + "a" * 5000 + '"}', "too large"),
    ('{"type": "dtmf", "digit": "55"}', "digit"),
    ('{"type": "dtmf", "digit": "x"}', "digit"),
])
def test_bad_client_messages_name_the_problem(raw: str, needle: str) -> None:
    with pytest.raises(InvalidMessage) as info:
        parse_client_message(raw)
    assert needle in info.value.message and info.value.code == "invalid_message"
