"""The talk-over benchmark: acknowledgements and interruptions spoken over replies, and one caller's turns.

    python -m bench talk-over --json bench/out/talk_over.json --plot bench/out/talk_over.png

Against a gateway process, one aiortc client per case: a long reply is started (a typed question), and
after a varied time the client speaks over it, in real time. An acknowledgement ("mm-hmm", "yep") should
leave the reply playing to its end, unanswered; an interruption ("wait", a question) should cut it. The
words and voices reported here were not used to tune the rules. Tuned on: mm-hmm/okay/yeah/right/I see/
uh-huh/sure/got it/wow in piper, espeak en-us and en-us+f3 (tests/integration/test_manners.py), then
yep/uh huh/mhm/alright/cool/oh okay/yes/exactly and wait/hold on stop/what time is it/no that's not what I
asked/sorry can you repeat that/actually tell me a joke in espeak en-gb, en-us+m3 and piper at 150 wpm
(which is how the short-sound rule came about: on those, the recognizer made "and luckily" of "exactly"),
then mm hm/yeah sure/uh-huh right/okay okay/I know/true/nice/hmm and stop please/wait a second/no no
that's wrong/how far away is the moon/hang on/excuse me I have a question in espeak en-us+f2, en-gb-x-rp
and piper at 195 wpm (where two-word acknowledgements with a comma ran past 1 s: BACKCHANNEL_MAX_MS 1500).
Reported: acknowledgements kept, interruptions honoured, how long a kept reply stayed silent (from the
caller's first sound to the reply heard again, and from the end of the acknowledgement), barge-in on the
client's clock, then one caller's turns: the end-of-turn decision and the first reply audio.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from alice_voice.audio.frames import rms
from bench.stats import summary
from bench.turns import speak_turn, utterances
from speech_fixtures import PROMPTS, silence, synth
from support.gateway import gateway_process
from support.rtc_client import Heard, RtcClient

LONG_REPLY = "what can you do"  # the local agent's longest answer: ~10 s of speech
ACKNOWLEDGEMENTS = ["Uh-huh.", "Yeah, yeah.", "Okay.", "Right, right.", "Oh, I see.", "Sure thing.", "Great.",
                    "Hm."]
INTERRUPTIONS = ["Stop.", "Wait, wait.", "No, that's wrong.", "What is the weather like tomorrow?",
                 "Hold on a moment.", "Sorry, I didn't get that."]
VOICES = [("espeak:en-GB-scotland", 170), ("espeak:en-029", 175), ("espeak:en-us+m7", 185)]
INTO_S = (0.6, 1.2, 2.0)  # how far into the reply the caller speaks
_LOUD = 200.0


@dataclass
class Case:
    text: str
    voice: str
    rate: int
    into_s: float
    acknowledgement: bool


@dataclass
class Outcome:
    case: Case
    kept: bool  # the reply played to its end (tts.stopped done) and nothing was answered
    silent_ms: float | None  # a kept reply: from the caller's first sound sent to the reply heard again
    resumed_after_ms: float | None  # a kept reply: from the end of the acknowledgement to the reply heard again
    barge_in_ms: float | None  # a cut reply: from the caller's first sound sent to the reply heard silent
    heard_as: str


def _loud(h: Heard) -> bool:
    return rms(h.pcm) > _LOUD


async def _one(url: str, case: Case) -> Outcome:
    async with RtcClient(url) as client:
        seen = len(client.events)
        client.send({"type": "text", "text": LONG_REPLY})
        await client.wait_event("tts.started", timeout=20, after=seen)
        await client.wait_heard(len(client.heard) + round(case.into_s / 0.02))
        pcm = synth(case.text, case.voice, case.rate)
        loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > _LOUD)
        first, last = loud[0] // 320, loud[-1] // 320
        sent_before = len(client.mic.sent_speech)
        client.say(np.concatenate([pcm, silence(0.8)]))
        stopped = await client.wait_event("tts.stopped", timeout=60, after=seen)
        await client.finish_speaking()
        if stopped["reason"] != "done":  # cut: its words are a turn, decided once the end of turn allows (the
            with contextlib.suppress(TimeoutError):  # ceiling, for words that stop mid-sentence: "Or I see")
                await client.wait_event("transcript.final", timeout=4, after=seen)
        sent = client.mic.sent_speech[sent_before:]
        spoke_at, ended_at = sent[first], sent[last]
        later = [h for h in client.heard if h.t > spoke_at]
        quiet = next((h.t for h in later if not _loud(h)), None)
        back = next((h.t for h in later if quiet is not None and h.t > quiet and _loud(h)), None)
        events = client.events[seen:]
        answered = sum(e["type"] == "transcript.final" for e in events)
        backchannel = next((e["text"] for e in events if e["type"] == "backchannel"), "")
        kept = stopped["reason"] == "done" and answered == 0
        final = next((e["text"] for e in events if e["type"] == "transcript.final"), "")
        return Outcome(case, kept,
                       (back - spoke_at) * 1000 if kept and back else None,
                       (back - ended_at) * 1000 if kept and back else None,
                       (quiet - spoke_at) * 1000 if not kept and quiet else None,
                       backchannel or final)


def cases() -> list[Case]:
    out = [Case(text, voice, rate, into, True) for (text, (voice, rate)), into in
           zip(itertools.product(ACKNOWLEDGEMENTS, VOICES), itertools.cycle(INTO_S))]
    out += [Case(text, voice, rate, into, False) for (text, (voice, rate)), into in
            zip(itertools.product(INTERRUPTIONS, VOICES), itertools.cycle(INTO_S))]
    return out


async def run(voices: list[str], prompts: int, **settings: Any) -> dict[str, Any]:
    async with gateway_process(latency_budget_ms=0, **settings) as gateway:
        outcomes = [await _one(gateway.url, case) for case in cases()]
        client = RtcClient(gateway.url)
        await client.connect(timeout=30)
        try:
            turns = [await speak_turn(client, utt) for utt in utterances(voices, PROMPTS[:prompts])]
        finally:
            await client.close()
    acks = [o for o in outcomes if o.case.acknowledgement]
    cuts = [o for o in outcomes if not o.case.acknowledgement]
    return {
        "acknowledgements": len(acks),
        "kept": sum(o.kept for o in acks),
        "kept_share": round(sum(o.kept for o in acks) / max(1, len(acks)), 3),
        "interruptions": len(cuts),
        "honoured": sum(not o.kept for o in cuts),
        "honoured_share": round(sum(not o.kept for o in cuts) / max(1, len(cuts)), 3),
        "silent_ms": summary(o.silent_ms for o in acks),
        "resumed_after_ms": summary(o.resumed_after_ms for o in acks),
        "barge_in_client_ms": summary(o.barge_in_ms for o in cuts),
        "missed": [(o.case.text, o.case.voice, o.heard_as) for o in acks if not o.kept]
                  + [(o.case.text, o.case.voice, o.heard_as) for o in cuts if o.kept],
        "turns": {"end_of_turn_ms": summary(t.gateway.get("end_of_turn_ms") for t in turns),
                  "client_first_audio_ms": summary(t.client_first_audio_ms for t in turns),
                  "gateway_first_audio_ms": summary(t.gateway.get("first_audio_ms") for t in turns),
                  "false_starts": sum(t.false_starts for t in turns), "count": len(turns),
                  "wer": round(float(np.mean([t.wer for t in turns])), 3) if turns else None},
    }
