"""The turn state machine without audio, models or network."""

from __future__ import annotations

from alice_voice.conversation.turns import (
    CancelReply,
    CommitReply,
    FinishAsr,
    OpenAsr,
    StartReply,
    TurnMachine,
    TurnState,
)


def test_plain_turn_with_speculative_reply_committed_at_end_of_turn() -> None:
    m = TurnMachine()
    assert m.speech_started() == [OpenAsr()] and m.state is TurnState.USER_SPEAKING
    assert m.silence_started() == [FinishAsr()]
    assert m.final_ready("what time is it") == [StartReply("what time is it", committed=False)]
    assert m.reply == "held" and m.state is TurnState.USER_SPEAKING
    assert m.turn_ended() == [CommitReply("what time is it")]
    assert m.state is TurnState.THINKING
    m.reply_audio_started()
    assert m.state is TurnState.SPEAKING
    m.reply_finished()
    assert m.state is TurnState.LISTENING and m.reply == "none"


def test_speech_resumed_cancels_the_held_reply_and_a_new_final_restarts_it() -> None:
    m = TurnMachine()
    m.speech_started()
    m.silence_started()
    m.final_ready("what is")
    assert m.speech_resumed() == [CancelReply("speech_resumed")]
    assert m.reply == "none" and m.state is TurnState.USER_SPEAKING
    assert m.silence_started() == [FinishAsr()]
    assert m.final_ready("what is seven times eight") == [StartReply("what is seven times eight", committed=False)]
    assert m.turn_ended() == [CommitReply("what is seven times eight")]


def test_turn_ended_before_the_final_waits_then_starts_committed() -> None:
    m = TurnMachine()
    m.speech_started()
    m.silence_started()
    assert m.turn_ended() == []
    assert m.state is TurnState.THINKING
    assert m.final_ready("hello") == [StartReply("hello", committed=True), CommitReply("hello")]


def test_speech_while_speaking_is_a_barge_in_and_a_new_turn() -> None:
    m = TurnMachine()
    m.speech_started()
    m.silence_started()
    m.final_ready("tell me a joke")
    m.turn_ended()
    m.reply_audio_started()
    assert m.speech_started() == [CancelReply("barge_in"), OpenAsr()]
    assert m.state is TurnState.USER_SPEAKING and m.reply == "none"


def test_speech_while_thinking_cancels_the_committed_reply() -> None:
    m = TurnMachine()
    m.speech_started()
    m.silence_started()
    m.final_ready("a")
    m.turn_ended()
    assert m.speech_started() == [CancelReply("barge_in"), OpenAsr()]


def test_stop_request_only_cuts_a_committed_reply() -> None:
    m = TurnMachine()
    assert m.stop_requested() == []
    m.speech_started()
    m.silence_started()
    m.final_ready("a")
    assert m.stop_requested() == []  # a held reply is the user's own turn still going on
    m.turn_ended()
    m.reply_audio_started()
    assert m.stop_requested() == [CancelReply("stop_request")]
    assert m.state is TurnState.LISTENING


def test_text_turn_runs_the_same_turn_without_audio() -> None:
    m = TurnMachine()
    assert m.text_turn("what is 2 plus 2") == [StartReply("what is 2 plus 2", committed=True),
                                               CommitReply("what is 2 plus 2")]
    assert m.state is TurnState.THINKING
    m.reply_audio_started()
    assert m.text_turn("stop, another one") == [CancelReply("barge_in"),
                                                StartReply("stop, another one", committed=True),
                                                CommitReply("stop, another one")]


def test_events_out_of_place_are_ignored() -> None:
    m = TurnMachine()
    assert m.silence_started() == [] and m.speech_resumed() == [] and m.turn_ended() == []
    assert m.final_ready("late") == []
    m.reply_finished()
    assert m.state is TurnState.LISTENING


def test_failed_reply_returns_to_listening() -> None:
    m = TurnMachine()
    m.text_turn("hi")
    m.reply_finished()
    assert m.state is TurnState.LISTENING and m.reply == "none"
