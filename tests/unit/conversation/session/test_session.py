"""The session's orchestration on a virtual clock: the real actor, policy, executor, hearing, replies and
playout, with scripted providers (tests/support/session_harness.py). No model, network or real time."""

from __future__ import annotations

import asyncio
import time

import pytest

from alice_voice.compute import Priority
from alice_voice.conversation.agents import Message
from alice_voice.conversation.policy import actions as act
from fakes.scripted import ScriptedAgent, ScriptedEndOfTurn, ScriptedTts, provider_error
from support.session_harness import SessionHarness
from support.virtual_time import VIRTUAL_TIME

pytestmark = [pytest.mark.asyncio, VIRTUAL_TIME]
LONG = "Here is a long answer with many words so that it plays for several seconds on end"


async def test_a_turn_from_speech_to_a_spoken_reply() -> None:
    async with SessionHarness() as s:
        s.say("what time is it", 800)
        s.pause(1500)
        await s.run_until_event("tts.stopped", reason="done")
        assert s.types("vad.speech_started", "vad.speech_stopped", "transcript.final", "tts.started", "tts.stopped",
                       "turn.metrics") == ["vad.speech_started", "vad.speech_stopped", "transcript.final",
                                           "tts.started", "tts.stopped", "turn.metrics"]
        final_at = s.events("transcript.final")[0]["at"]
        deltas = s.events("agent.text")
        assert "".join(e["delta"] for e in deltas) == "You said what time is it."
        assert all(e["at"] == final_at for e in deltas), "a held reply's text goes out when the turn is confirmed"
        assert s.events("tts.stopped")[0]["heard"] == "You said what time is it.", "all of it was played"
        assert [e["text"] for e in s.events("transcript.partial")][-1] == "what time is it"
        assert s.events("transcript.final")[0]["text"] == "what time is it"
        kinds = [type(a).__name__ for a in s.done(act.OpenAsr, act.FinishAsr, act.StartReply, act.AskEndOfTurn,
                                                  act.CommitReply)]
        assert kinds == ["OpenAsr", "FinishAsr", "StartReply", "AskEndOfTurn", "CommitReply"]
        start = s.done(act.StartReply)[0]
        assert isinstance(start, act.StartReply) and start.held and start.text == "what time is it"
        assert s.agent.calls == [("what time is it", [])]
        assert s.actor.history == [Message("user", "what time is it"),
                                   Message("assistant", "You said what time is it.")]
        assert s.port.states == ["user_speaking", "thinking", "speaking", "listening"]
        timings = s.events("turn.metrics")[0]["timings"]
        # The sound ended at 1000.02 + 0.8 s; the model is asked after 224 ms of silence measured from
        # there (the frame that ends it arrives up to 32 ms later), answers at once, and the reply's
        # first frame goes out on the next 20 ms tick.
        assert 224 <= timings["end_of_turn_ms"] <= 224 + 32 + 20
        assert timings["end_of_turn_ms"] <= timings["first_audio_ms"] <= timings["end_of_turn_ms"] + 40
        assert s.audible_ms() == 6 * 200  # six words of 200 ms each, all of it sent


@pytest.mark.parametrize("lead_ms", [96, 224])
async def test_a_question_asked_early_hears_the_whole_pause_it_is_about(lead_ms: int) -> None:
    """EOT_ASK_LEAD_MS: the model is asked before the silence is over, on the audio so far carried on with its
    own quiet; it hears as much audio as the question asked on time (to within the one frame that one is
    rounded up to), and the turn ends no later."""
    heard: dict[int, tuple[int, float]] = {}
    for lead in (0, lead_ms):
        async with SessionHarness(end_of_turn=ScriptedEndOfTurn(1.0), eot_ask_lead_ms=lead) as s:
            s.say("what time is it", 800)
            s.pause(1500)
            await s.run_until_event("tts.stopped", reason="done")
            asks = [a for a in s.done(act.AskEndOfTurn) if isinstance(a, act.AskEndOfTurn)]
            assert len(asks) == 1 and (asks[0].pad_ms > 0) == (lead > 0)
            heard[lead] = (s.end_of_turn.asked[0], s.events("turn.metrics")[0]["timings"]["end_of_turn_ms"])
    (on_time, ended_on_time), (early, ended_early) = heard[0], heard[lead_ms]
    assert 0 <= on_time - early < 512, "the same pause, not rounded up to a frame"
    assert 224 <= ended_early <= ended_on_time


async def test_the_model_work_goes_through_the_scheduler_at_its_priority() -> None:
    async with SessionHarness() as s:
        s.say("what time is it", 800)
        s.pause(1500)
        await s.run_until_event("tts.stopped", reason="done")
        used = set(s.compute.priorities)
        assert {Priority.HEARING, Priority.END_OF_TURN, Priority.FIRST_TTS} <= used
        first_tts = s.compute.priorities.index(Priority.FIRST_TTS)
        assert s.compute.priorities.index(Priority.END_OF_TURN) > first_tts, "the reply is prepared speculatively"
        assert s.tts.calls == [("You said what time is it.", True)]


async def test_speech_resuming_drops_the_speculative_reply_unheard() -> None:
    async with SessionHarness(end_of_turn=ScriptedEndOfTurn(0.1, 1.0)) as s:
        s.say("what time is it", 500)
        s.pause(300)  # the model is asked once (incomplete) and the speculative reply is ready, held
        s.say("in london", 900)
        s.pause(1500)
        await s.run_until_event("tts.stopped", reason="done")
        starts = s.done(act.StartReply)
        assert [a.text for a in starts if isinstance(a, act.StartReply)] == ["what time is it",
                                                                              "what time is it in london"]
        cuts = s.done(act.CutReply)
        assert [(c.reply_id, c.reason) for c in cuts if isinstance(c, act.CutReply)] == [(1, "speech_resumed")]
        assert "".join(e["delta"] for e in s.events("agent.text")) == "You said what time is it in london."
        assert s.types("tts.started", "tts.stopped") == ["tts.started", "tts.stopped"]
        assert s.events("transcript.final")[0]["text"] == "what time is it in london"


async def test_a_sentence_paused_after_a_word_it_cannot_end_on_waits_for_the_caller() -> None:
    """"Set a timer for | (1.5 s) | ten minutes": the words are cut mid-sentence, so the pause is no end,
    whatever the audio model says; no reply is even prepared for the half; one turn, one reply."""
    async with SessionHarness(end_of_turn=ScriptedEndOfTurn(1.0)) as s:
        s.say("set a timer for", 700)
        s.pause(1500)
        s.say("ten minutes", 600)
        s.pause(1500)
        await s.run_until_event("tts.stopped", reason="done")
    assert [text for text, _ in s.agent.calls] == ["set a timer for ten minutes"]
    assert s.types("transcript.final") == ["transcript.final"]
    assert not s.done(act.CutReply), "nothing begun, nothing dropped"


async def test_a_caller_who_stops_mid_sentence_is_answered_at_the_ceiling() -> None:
    async with SessionHarness(end_of_turn=ScriptedEndOfTurn(1.0), eot_max_wait_ms=2000) as s:
        s.say("remind me to water the", 900)
        s.pause(3000)
        await s.run_until_event("tts.started")
    ended = next(e["at"] for e in s.events("turn.state") if e["state"] == "thinking")
    silence_noticed = s.events("vad.speech_stopped")[0]["at"]  # (a frame or two after the sound ended)
    assert 1.9 <= ended - silence_noticed <= 2.1, "the ceiling, not the fallback (1.2 s)"


async def test_talking_over_the_reply_pauses_it_at_once_then_cuts_it() -> None:
    async with SessionHarness(agent=ScriptedAgent({"tell me more": LONG})) as s:
        s.say("tell me more", 600)
        s.pause(600)
        await s.run_until_event("tts.started")
        await s.run(1000)
        heard_before = s.audible_ms()
        s.say("stop", 400)
        s.pause(1200)
        stopped = await s.run_until_event("tts.stopped")
        assert stopped["reason"] == "barge_in"
        assert stopped["heard"] and LONG.startswith(stopped["heard"]) and stopped["heard"] != LONG
        kinds = [type(a).__name__ for a in s.done(act.PausePlayout, act.CutReply)]
        assert kinds == ["PausePlayout", "CutReply"]
        pause_at = next(t for t, a in s.actions if isinstance(a, act.PausePlayout))
        silent_from = next(t for t, frame in s.sent if t > pause_at and not frame.any())
        assert silent_from - pause_at <= 0.02 + 1e-9, "the very next tick is silent"
        assert heard_before <= s.audible_ms() <= heard_before + 80  # nothing more played after the pause
        cut_turn = s.events("turn.metrics")[0]["timings"]
        assert 0 < cut_turn["barge_in_ms"] <= 32 + 20 + 1e-6  # the onset's frame, then up to one tick
        await s.run_until_event("tts.stopped", reason="done")
        assert s.actor.history[:3] == [Message("user", "tell me more"), Message("assistant", stopped["heard"]),
                                       Message("user", "stop")]


async def test_a_cough_pauses_the_reply_and_it_resumes_where_it_stopped() -> None:
    async with SessionHarness(agent=ScriptedAgent({"tell me more": LONG})) as s:
        s.say("tell me more", 600)
        s.pause(600)
        await s.run_until_event("tts.started")
        await s.run(500)
        s.noise(40)  # one VAD frame of noise: an onset that never becomes speech
        await s.run_until_event("tts.stopped", max_ms=20_000)
        assert s.events("tts.stopped")[0]["reason"] == "done"
        assert [type(a).__name__ for a in s.done(act.PausePlayout, act.ResumePlayout, act.CutReply)] == [
            "PausePlayout", "ResumePlayout"]
        assert "vad.speech_started" not in s.types()[2:]  # only the first turn's
        assert s.audible_ms() == len(LONG.split()) * 200, "nothing skipped, nothing repeated"


async def test_going_on_right_after_an_end_of_turn_continues_the_same_turn() -> None:
    agent = ScriptedAgent({"I would like a table": LONG})
    async with SessionHarness(agent=agent) as s:
        s.say("I would like a table", 900)
        s.pause(400)  # read as the end of the turn: the reply starts
        await s.run_until_event("tts.started")
        s.say("for two people", 700)
        s.pause(1500)
        stopped = await s.run_until_event("tts.stopped")
        assert stopped["reason"] == "barge_in"
        await s.run_until_event("tts.stopped", reason="done")
        assert [text for text, _ in agent.calls] == ["I would like a table", "I would like a table for two people"]
        assert agent.calls[1][1] == [], "the false start left no trace in the history"
        assert [type(a).__name__ for a in s.done(act.CutReply)] == ["CutReply"]
        assert [c.reason for c in s.done(act.CutReply) if isinstance(c, act.CutReply)] == ["rejoin"]
        assert s.actor.history == [Message("user", "I would like a table for two people"),
                                   Message("assistant", "You said I would like a table for two people.")]


async def test_a_failing_agent_ends_the_turn_with_an_error_and_the_session_listens_again() -> None:
    agent = ScriptedAgent()
    agent.fail_next = provider_error("the model server is down")
    async with SessionHarness(agent=agent) as s:
        s.say("hello", 500)
        s.pause(1000)
        error = await s.run_until_event("error")
        assert error["code"] == "provider_error" and "down" in error["message"]
        assert s.port.states[-1] == "listening"
        s.say("hello again", 500)
        s.pause(1500)
        await s.run_until_event("tts.stopped", reason="done")
        assert s.actor.history[-1] == Message("assistant", "You said hello again.")


async def test_any_exception_from_a_provider_is_a_provider_error_naming_it() -> None:
    tts = ScriptedTts()
    tts.fail_next = RuntimeError("ONNXRuntimeError: bad input")
    async with SessionHarness(tts=tts, turn_rejoin_ms=0) as s:  # (else "wait" would continue "hello")
        s.say("hello", 500)
        s.pause(1000)
        error = await s.run_until_event("error")
        assert error["code"] == "provider_error" and error["message"].startswith("scripted-tts: RuntimeError")
        assert s.port.states[-1] == "listening" and "tts.started" not in s.types()
        assert s.events("turn.metrics"), "the failed turn is still reported"


async def test_a_recognizer_failure_drops_the_utterance_and_the_session_listens_again() -> None:
    async with SessionHarness() as s:
        s.asr.fail_next = provider_error("decoder crashed")
        s.say("hello", 500)
        s.pause(800)
        error = await s.run_until_event("error")
        assert "decoder crashed" in error["message"]
        assert s.asr.streams[0].closed and s.port.states[-1] == "listening"
        s.say("hello again", 500)
        s.pause(1500)
        await s.run_until_event("tts.stopped", reason="done")


async def test_a_held_reply_that_fails_is_forgotten_when_speech_goes_on() -> None:
    agent = ScriptedAgent()
    agent.fail_next = provider_error()
    async with SessionHarness(agent=agent, end_of_turn=ScriptedEndOfTurn(0.1, 1.0)) as s:
        s.say("what time is it", 500)
        s.pause(300)
        s.say("in london", 500)
        s.pause(1500)
        await s.run_until_event("tts.stopped", reason="done")
        assert "error" not in s.types()


async def test_stop_requests_and_typed_turns() -> None:
    async with SessionHarness(agent=ScriptedAgent({"talk": LONG})) as s:
        assert await s.actor.stop_tts() is False
        s.actor.handle_text("talk")
        await s.run_until_event("tts.started")
        assert await s.actor.stop_tts() is True
        await s.settle()
        stopped = s.events("tts.stopped")[0]
        assert stopped["reason"] == "stop_request" and LONG.startswith(stopped["heard"])
        assert "transcript.final" not in s.types(), "a typed turn has no transcript"
        assert s.port.states[-1] == "listening"


async def test_a_conversation_runs_in_well_under_a_second() -> None:
    started = time.perf_counter()
    async with SessionHarness(agent=ScriptedAgent({"tell me more": LONG})) as s:
        for text in ("hello", "tell me more", "thanks"):
            s.say(text, 700)
            s.pause(900)
            await s.run_until(lambda: s.port.states[-1:] == ["listening"] and not s._mic, max_ms=30_000)
        assert len(s.events("turn.metrics")) == 3
    assert time.perf_counter() - started < 1.0


async def test_a_broken_end_of_turn_model_leaves_the_silence_fallback_to_end_the_turn() -> None:
    async with SessionHarness(end_of_turn=ScriptedEndOfTurn(RuntimeError("onnx session lost"))) as s:
        s.say("hello", 500)
        s.pause(1500)
        await s.run_until_event("tts.stopped", reason="done")
        assert len(s.end_of_turn.asked) >= 2, "asked again on schedule after each failure"
        timings = s.events("turn.metrics")[0]["timings"]
        assert timings["end_of_turn_ms"] >= s.settings.eot_fallback_ms, "the fallback ended it"
        assert timings["patience_ms"] == s.settings.eot_fallback_ms - s.settings.eot_silence_ms, "the caller's time"
        assert "error" not in s.types(), "the caller is not troubled with it"


async def test_speaking_before_the_reply_is_heard_cuts_it_and_nothing_of_it_is_kept() -> None:
    tts = ScriptedTts()
    tts.hold = asyncio.Event()  # a slow engine: the reply is committed but has no audio yet
    async with SessionHarness(tts=tts, turn_rejoin_ms=0) as s:  # (else "wait" would continue "hello")
        s.say("hello", 500)
        s.pause(600)
        await s.run_until(lambda: "thinking" in s.port.states)
        s.say("wait", 400)
        s.pause(1200)
        stopped = await s.run_until_event("tts.stopped")
        assert (stopped["reason"], stopped["heard"]) == ("barge_in", "")
        assert "tts.started" not in s.types()
        tts.hold.set()
        await s.run_until_event("tts.stopped", reason="done")
        assert s.actor.history == [Message("user", "hello"), Message("user", "wait"),
                                   Message("assistant", "You said wait.")], "nothing of the cut reply is kept"


async def test_a_typed_turn_over_a_playing_reply_interrupts_it() -> None:
    async with SessionHarness(agent=ScriptedAgent({"talk": LONG})) as s:
        s.actor.handle_text("talk")
        await s.run_until_event("tts.started")
        await s.run(400)
        s.actor.handle_text("what time is it")
        stopped = await s.run_until_event("tts.stopped")
        assert stopped["reason"] == "barge_in" and LONG.startswith(stopped["heard"]) and stopped["heard"]
        await s.run_until_event("tts.stopped", reason="done")
        assert [m.role for m in s.actor.history] == ["user", "assistant", "user", "assistant"]
        assert s.actor.history[1].content == stopped["heard"]


async def test_a_cough_then_a_real_interruption_measures_the_interruption_not_the_cough() -> None:
    async with SessionHarness(agent=ScriptedAgent({"tell me more": LONG})) as s:
        s.say("tell me more", 600)
        s.pause(600)
        await s.run_until_event("tts.started")
        s.noise(40)
        s.pause(600)
        s.say("stop", 400)
        s.pause(1000)
        await s.run_until_event("tts.stopped")
        cut = s.events("turn.metrics")[0]["timings"]
        assert 0 < cut["barge_in_ms"] <= 32 + 20 + 1e-6


# ---------- speech over a reply: backchannel, continuation, interruption (policy/overlap.py) ----------
async def test_a_backchannel_pauses_the_reply_which_then_goes_on_where_it_stopped_unanswered() -> None:
    async with SessionHarness(agent=ScriptedAgent({"tell me more": LONG})) as s:
        s.say("tell me more", 600)
        s.pause(600)
        await s.run_until_event("tts.started")
        await s.run(600)
        s.say("mm-hmm", 400)
        backchannel = await s.run_until_event("backchannel")
        await s.run_until_event("tts.stopped", max_ms=30_000)
        assert s.events("tts.stopped")[0]["reason"] == "done"
        # from its first voiced 32 ms frame's arrival to the end of its sound
        assert backchannel["text"] == "mm-hmm" and 400 - 64 <= backchannel["duration_ms"] <= 400
        assert [text for text, _ in s.agent.calls] == ["tell me more"], "the backchannel is not answered"
        assert s.actor.history == [Message("user", "tell me more"), Message("assistant", LONG)]
        assert s.audible_ms() == len(LONG.split()) * 200, "resumed where it paused: nothing skipped or repeated"
        assert [type(a).__name__ for a in s.done(act.PausePlayout, act.ResumePlayout, act.CutReply)] == [
            "PausePlayout", "ResumePlayout"]
        states = [e["state"] for e in s.events("turn.state")]
        assert states == ["user_speaking", "thinking", "speaking", "paused", "speaking", "listening"]
        assert len(s.events("turn.metrics")) == 1 and "transcript.final" in s.types()
        assert [e["text"] for e in s.events("transcript.final")] == ["tell me more"]
        registry = s.metrics.registry
        assert registry.get_sample_value("voice_backchannels_total") == 1
        assert registry.get_sample_value("voice_replies_resumed_total") == 1


async def test_a_short_sound_read_as_a_whole_sentence_is_not_taken_at_its_word() -> None:
    """Whisper read a lone 280 ms "yeah" over a reply as "It's not a good way to get it."."""
    async with SessionHarness(agent=ScriptedAgent({"tell me more": LONG})) as s:
        s.say("tell me more", 600)
        s.pause(1200)
        await s.run_until_event("tts.started")
        await s.run(600)
        s.say("its not a good way to get it", 280)
        backchannel = await s.run_until_event("backchannel")
        await s.run_until_event("tts.stopped", max_ms=30_000)
        assert backchannel["text"] == "", "the made-up words are not shown as what the caller said"
        assert s.events("tts.stopped")[0]["reason"] == "done"
        assert [text for text, _ in s.agent.calls] == ["tell me more"]


@pytest.mark.parametrize("said", ["wait", "no no no", "yeah but what about the weather"])
async def test_anything_but_an_acknowledgement_cuts_the_reply_and_is_answered(said: str) -> None:
    async with SessionHarness(agent=ScriptedAgent({"tell me more": LONG})) as s:
        s.say("tell me more", 600)
        s.pause(1200)  # past the rejoin window: no continuation possible
        await s.run_until_event("tts.started")
        await s.run(600)
        s.say(said, 900)
        s.pause(1200)
        stopped = await s.run_until_event("tts.stopped")
        assert stopped["reason"] == "barge_in" and LONG.startswith(stopped["heard"])
        await s.run_until_event("tts.stopped", reason="done")
        assert [text for text, _ in s.agent.calls] == ["tell me more", said]
        assert s.actor.history[1] == Message("assistant", stopped["heard"])
        assert "backchannel" not in s.types()
        assert s.metrics.registry.get_sample_value("voice_interruptions_total") == 1


async def test_an_acknowledgement_that_goes_on_and_on_is_an_interruption() -> None:
    async with SessionHarness(agent=ScriptedAgent({"tell me more": LONG}), backchannel_max_ms=800) as s:
        s.say("tell me more", 600)
        s.pause(1200)
        await s.run_until_event("tts.started")
        s.say("yeah", 1500)  # one word, but a long one: past the limit while still speaking
        stopped = await s.run_until_event("tts.stopped")
        assert stopped["reason"] == "barge_in"
        cut_at = next(t for t, a in s.actions if isinstance(a, act.CutReply))
        spoke_at = s.events("vad.speech_started")[-1]["at"]  # (at its 2nd frame: the limit counts from the 1st)
        assert 0.8 - 0.07 <= cut_at - spoke_at <= 0.8 + 0.04, "cut as the limit passed, not at the end"


async def test_a_new_question_over_the_reply_to_a_complete_one_is_its_own_turn() -> None:
    agent = ScriptedAgent({"tell me a joke": LONG})
    async with SessionHarness(agent=agent) as s:
        s.say("tell me a joke", 700)
        s.pause(400)
        await s.run_until_event("tts.started")
        s.pause(300)  # 300 ms into the joke: a new thought, not the same utterance going on
        s.say("thanks that's all for now goodbye", 1200)  # within the rejoin window, over the audible joke
        s.pause(1500)
        await s.run_until_event("tts.stopped", reason="done")
        assert [text for text, _ in agent.calls] == ["tell me a joke", "thanks that's all for now goodbye"]
        assert s.actor.history[0] == Message("user", "tell me a joke"), "not merged into the question before"
        assert s.actor.history[1].role == "assistant" and LONG.startswith(s.actor.history[1].content)


async def test_a_second_sentence_said_at_once_is_the_same_utterance_and_gets_one_reply() -> None:
    """"Thanks, that's all for now. | Goodbye!": the turn ended between the two sentences, and the caller
    went on at once; "Goodbye!" is neither an acknowledgement of the begun reply nor a turn of its own."""
    agent = ScriptedAgent({"thanks that's all for now": LONG})
    async with SessionHarness(agent=agent) as s:
        s.say("thanks that's all for now", 900)
        s.pause(400)
        await s.run_until_event("tts.started")
        said_at = s.events("vad.speech_stopped")[0]["at"]
        s.say("goodbye", 400)  # the caller was still going: ~300 ms after their last word
        s.pause(1500)
        await s.run_until_event("tts.stopped", reason="done")
        assert s.events("vad.speech_started")[-1]["at"] - said_at < 0.5
    assert [text for text, _ in agent.calls] == ["thanks that's all for now", "thanks that's all for now goodbye"]
    assert s.types("backchannel") == [], "not an acknowledgement of the begun reply"
    assert [m.content for m in s.actor.history if m.role == "user"] == ["thanks that's all for now goodbye"]
    assert s.metrics.turn_repairs._value.get() == 1


async def test_going_on_with_an_unfinished_sentence_over_its_reply_is_one_turn() -> None:
    agent = ScriptedAgent({"I would like a table for": LONG})
    async with SessionHarness(agent=agent) as s:
        s.say("I would like a table for", 1000)
        s.pause(500)
        await s.run_until_event("tts.started")
        s.say("two people tonight", 900)
        s.pause(1500)
        await s.run_until_event("tts.stopped", reason="done")
        assert [text for text, _ in agent.calls] == ["I would like a table for",
                                                      "I would like a table for two people tonight"]
        assert agent.calls[1][1] == [], "the false start left no trace in the history"
        assert s.metrics.registry.get_sample_value("voice_turn_repairs_total") == 1
        assert [e["text"] for e in s.events("transcript.final")][-1] == "I would like a table for two people tonight"


async def test_with_backchannels_off_any_speech_over_the_reply_cuts_it() -> None:
    async with SessionHarness(agent=ScriptedAgent({"tell me more": LONG}), backchannels=False) as s:
        s.say("tell me more", 600)
        s.pause(1200)
        await s.run_until_event("tts.started")
        s.say("mm-hmm", 400)
        s.pause(1200)
        stopped = await s.run_until_event("tts.stopped")
        assert stopped["reason"] == "barge_in"


# ---------- an idle caller ----------
async def test_a_silent_caller_is_asked_once_then_said_goodbye_to_and_the_session_ends() -> None:
    async with SessionHarness(idle_prompt_s=2.0, idle_end_s=3.0) as s:
        s.say("hello", 500)
        s.pause(1000)
        done = await s.run_until_event("tts.stopped", reason="done")
        await s.run_until(lambda: bool(s.port.ended), max_ms=10_000)
        replies = [e for e in s.events("agent.text")]
        said = "".join(e["delta"] for e in replies)
        assert said == "You said hello.Are you still there?It seems you've stepped away. Goodbye for now!"
        prompt_at = next(e["at"] for e in replies if e["delta"] == "Are you still there?")
        assert prompt_at - done["at"] == pytest.approx(2.0, abs=0.05), "asked after the idle time, once"
        assert [text for text, _ in s.agent.calls] == ["hello"], "the gateway's own words, not the agent's"
        assert s.events("session.ending")[0]["reason"] == "idle" and s.port.ended == ["idle"]
        assert s.actor.history[-1] == Message("assistant", "It seems you've stepped away. Goodbye for now!")
        assert s.audible_ms() > 0 and s.types("tts.stopped")[-1] == "tts.stopped"


async def test_speaking_after_the_prompt_keeps_the_call_going() -> None:
    async with SessionHarness(idle_prompt_s=2.0, idle_end_s=3.0) as s:
        s.say("hello", 500)
        s.pause(1000)
        await s.run_until(lambda: any(e["delta"] == "Are you still there?" for e in s.events("agent.text")))
        await s.run_until_event("tts.stopped", reason="done")
        s.say("yes I am", 600)
        s.pause(1000)
        await s.run_until(lambda: [t for t, _ in s.agent.calls] == ["hello", "yes I am"])
        await s.run(3500)
        assert not s.port.ended and "session.ending" not in s.types()


async def test_with_the_idle_steps_off_a_silent_call_just_waits() -> None:
    async with SessionHarness(idle_prompt_s=0, idle_end_s=0) as s:
        s.say("hello", 500)
        s.pause(1000)
        await s.run_until_event("tts.stopped", reason="done")
        await s.run(60_000)
        assert len(s.agent.calls) == 1 and not s.port.ended and len(s.events("tts.started")) == 1


# ---------- the end of a turn takes its words ----------
async def test_a_pause_after_a_word_no_sentence_ends_on_is_not_the_end_whatever_the_model_says() -> None:
    agent = ScriptedAgent()
    async with SessionHarness(agent=agent, end_of_turn=ScriptedEndOfTurn(0.99)) as s:
        s.say("I would like a pizza with", 1000)
        s.pause(500)
        s.say("extra cheese", 700)
        s.pause(1500)
        await s.run_until_event("tts.stopped", reason="done")
        assert [text for text, _ in agent.calls][-1] == "I would like a pizza with extra cheese"
        assert "tts.started" in s.types() and s.types("tts.started") == ["tts.started"], "no false start"
        assert not s.done(act.CutReply) or all(c.reason == "speech_resumed" for c in s.done(act.CutReply)
                                               if isinstance(c, act.CutReply))


async def test_a_complete_sentence_ends_as_soon_as_the_model_and_the_words_agree() -> None:
    async with SessionHarness(end_of_turn=ScriptedEndOfTurn(0.99)) as s:
        s.say("what time is it", 800)
        s.pause(1500)
        await s.run_until_event("tts.stopped", reason="done")
        timings = s.events("turn.metrics")[0]["timings"]
        # the words were in first (the scripted final is instant): the model's first answer decided
        assert timings["final_after_speech_ms"] < timings["end_of_turn_ms"] <= s.settings.eot_silence_ms + 32 + 20


async def test_a_hundred_spoken_exchanges_run_on_virtual_time() -> None:
    """The whole session, on virtual time: a hundred turns, each heard, ended, answered and played out,
    ~85 s of conversation in ~0.6 s here. The bound is loose (a slow CI box): it proves that nothing waits
    in real time."""
    started, virtual_start = time.perf_counter(), asyncio.get_running_loop().time()
    async with SessionHarness(tts=ScriptedTts(ms_per_word=50)) as s:
        for n in range(100):
            s.say(f"question {n}", 400)
            s.pause(400)
            await s.run_until(lambda n=n: len(s.port.turns) > n and s.port.states[-1] == "listening")
        assert [m.content for m in s.actor.history[-2:]] == ["question 99", "You said question 99."]
        assert len(s.actor.history) == 40, "trimmed to the last forty messages"
    elapsed, virtual = time.perf_counter() - started, asyncio.get_running_loop().time() - virtual_start
    assert virtual > 80 and elapsed < 3.0, f"{virtual:.0f} s of conversation took {elapsed:.2f} s"
