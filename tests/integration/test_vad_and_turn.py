"""Silero VAD, smart-turn v3.2 and endpointing together, on synthesized speech (real models)."""

from __future__ import annotations

import dataclasses
import gc
import importlib.metadata
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from alice_voice.audio.frames import Pcm
from alice_voice.config import Settings
from alice_voice.conversation.policy import PolicyConfig
from alice_voice.conversation.policy.endpointing import (
    AskEndOfTurn,
    Endpointing,
    EndpointingConfig,
    Event,
    Onset,
    SilenceStarted,
    SpeechResumed,
    SpeechStarted,
    TurnEnded,
)
from alice_voice.conversation.session.hearing import SUB_BLOCKS
from alice_voice.errors import ProviderError
from alice_voice.speech import silero_vad, smart_turn
from alice_voice.speech.completeness import load_weights
from alice_voice.speech.silero_vad import FRAME_SAMPLES, SileroVad
from alice_voice.speech.smart_turn import SmartTurn, window
from speech_fixtures import PROMPTS, VOICES, silence, synth
from support.engines import shared_compute

pytestmark = pytest.mark.models
COMPLETENESS = load_weights()

RATE = 16_000
FRAME_S = FRAME_SAMPLES / RATE
LEAD_S, TAIL_S = 0.6, 1.2
QUIET = 200  # int16 amplitude under which synthesized audio is silent


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return silero_vad.load(Settings(), shared_compute())


@pytest.fixture(scope="module")
def turn_model() -> SmartTurn:
    return smart_turn.load(Settings(), shared_compute())


def trim(pcm: Pcm) -> Pcm:
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > QUIET)
    return pcm[loud[0]:loud[-1] + 1]


def in_room(*parts: Pcm, lead: float = LEAD_S, seed: int = 0) -> Pcm:
    """`parts` between a lead-in and a tail of silence, all under a quiet noise floor."""
    audio = np.concatenate([silence(lead), *parts, silence(TAIL_S)]).astype(np.int32)
    noise = np.random.default_rng(seed).normal(0.0, 30.0, len(audio)).round().astype(np.int32)
    out: Pcm = np.clip(audio + noise, -32768, 32767).astype(np.int16)
    return out


@dataclass
class Run:
    probs: list[float]
    events: list[tuple[int, Event]]  # (frame index, event)

    def of(self, kind: type) -> list[tuple[int, Event]]:
        return [(i, e) for i, e in self.events if isinstance(e, kind)]


def loudness(frame: Pcm) -> tuple[float, ...]:
    """The RMS of each of the frame's sub-blocks, as the session's hearing measures it."""
    blocks = frame.astype(np.float64).reshape(SUB_BLOCKS, -1)
    return tuple(float(v) for v in np.sqrt((blocks ** 2).mean(axis=1)))


def settings_config(**settings: Any) -> EndpointingConfig:
    """Endpointing as a session configures it from these settings."""
    return PolicyConfig.from_settings(Settings(**settings), model_enabled=True).endpointing


def run(audio: Pcm, vad: SileroVad, config: EndpointingConfig, model: SmartTurn | None = None,
        words: Sequence[str] = ()) -> Run:
    """Frames through VAD and endpointing; each question is answered at once (the strictest timing:
    a real answer comes ~60-110 ms later, and speech resuming meanwhile voids it). Frame i arrives at its
    end, (i + 1) * FRAME_S, so arrivals are positions in the audio. `words[k]`: what the speculative final
    of the k-th pause reads (the last one for any later pause), given at once as the pause starts."""
    endpointing = Endpointing(dataclasses.replace(config, model_enabled=model is not None))
    out = Run([], [])
    turn_start = 0
    pauses = 0
    with vad.stream() as stream:
        for i in range(len(audio) // FRAME_SAMPLES):
            frame = audio[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES]
            prob = stream.prob(frame)
            out.probs.append(prob)
            pending = endpointing.on_frame(i, (i + 1) * FRAME_S, prob, loudness(frame))
            while pending:
                event = pending.pop(0)
                out.events.append((i, event))
                if isinstance(event, SpeechStarted):
                    turn_start = event.keep_from
                elif isinstance(event, SilenceStarted) and words:
                    pending += endpointing.on_words(COMPLETENESS.prob_complete(words[min(pauses, len(words) - 1)]))
                    pauses += 1
                elif isinstance(event, AskEndOfTurn) and model is not None:
                    turn = audio[turn_start * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES]
                    pending += endpointing.on_answer(event.ask_id, model.prob_complete(turn))
    return out


# ---------- Silero VAD ----------
def test_streams_borrow_pooled_detectors_and_give_them_back() -> None:
    model = SileroVad(prefill=1)
    with model.stream():
        pass
    first, second = model.stream(), model.stream()
    assert model.detectors_created == 2, "the closed stream's detector was reused, one more was made"
    first.close()
    first.close()  # idempotent
    assert model.detectors_idle == 1
    with pytest.raises(RuntimeError, match="closed"):
        first.prob(np.zeros(FRAME_SAMPLES, np.int16))
    with pytest.raises(ValueError, match="512"):
        second.prob(np.zeros(320, np.int16))
    del second
    gc.collect()
    assert model.detectors_idle == 2, "a forgotten stream returns its detector when collected"
    assert model.detectors_created == 2


def test_a_returned_detector_starts_fresh(vad: SileroVad) -> None:
    audio = in_room(trim(synth("Turn on the kitchen lights.")))
    frames = [audio[i:i + FRAME_SAMPLES] for i in range(0, len(audio) - FRAME_SAMPLES + 1, FRAME_SAMPLES)]
    with vad.stream() as stream:
        fresh = [stream.prob(f) for f in frames]
        stream.reset()
        after_reset = [stream.prob(f) for f in frames]
    with vad.stream() as stream:  # the same detector again, from the pool
        reused = [stream.prob(f) for f in frames]
    assert max(fresh) > 0.9
    assert after_reset == pytest.approx(fresh, abs=1e-6)
    assert reused == pytest.approx(fresh, abs=1e-6)


@pytest.mark.parametrize("noise_rms", [0.0, 100.0, 300.0])
def test_silence_and_low_noise_are_not_speech(vad: SileroVad, noise_rms: float) -> None:
    audio = silence(3.0, noise_rms=noise_rms, seed=7)
    result = run(audio, vad, EndpointingConfig())
    assert max(result.probs) < EndpointingConfig().vad_threshold
    assert result.events == [], "not even an onset"


def test_speech_onset_is_found_within_about_64_ms(vad: SileroVad) -> None:
    """Onsets at two phases of the 32 ms frame grid. Voiced onsets are found in the first frame; soft
    ones ("Th", "S", "H") can take a frame or two more, so the bound is ~64 ms typical, 96 ms worst."""
    config = EndpointingConfig()
    late_ms = []
    for n, (text, voice) in enumerate([(p, v) for p in PROMPTS[:12:3] for v in VOICES]):
        speech = trim(synth(text, voice))
        for lead in (0.576, 0.600):  # on a frame boundary, and 24 ms into a frame
            result = run(in_room(speech, lead=lead, seed=n), vad, config)
            (frame, started), *_ = result.of(SpeechStarted)
            assert isinstance(started, SpeechStarted)
            onset_frame, onset = [(i, e) for i, e in result.of(Onset) if i <= frame][-1]
            assert isinstance(onset, Onset) and onset.arrival == started.first_arrival, "the turn's own onset"
            first_frame_start = started.first_arrival - FRAME_S
            assert first_frame_start == pytest.approx(onset_frame * FRAME_S)
            assert first_frame_start >= lead - FRAME_S, "no speech before the onset's frame"
            late_ms.append((first_frame_start - lead) * 1000)
            onset_frames = frame - onset_frame + 1  # voiced frames that led to the decision
            assert onset_frames == config.frames(config.vad_min_speech_ms)
            assert onset_frames * config.frame_ms >= config.vad_min_speech_ms
            kept_from = started.keep_from * FRAME_S
            assert kept_from <= lead - (config.vad_preroll_ms - 96) / 1000, "the preroll covers the onset"
    assert max(late_ms) <= 96 + 1e-6
    assert float(np.median(late_ms)) <= 32 + 1e-6
    assert float(np.mean([ms <= 64 + 1e-6 for ms in late_ms])) >= 0.75


# ---------- smart-turn ----------
def pipecat_features() -> Callable[..., npt.NDArray[np.float32]]:
    """pipecat's own feature function, loaded from its file (it imports only numpy; pipecat is not imported)."""
    path = importlib.metadata.distribution("pipecat-ai").locate_file(
        "pipecat/audio/turn/smart_turn/_whisper_features.py")
    spec = importlib.util.spec_from_file_location("pipecat_whisper_features", str(path))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    function: Callable[..., npt.NDArray[np.float32]] = module.compute_whisper_log_mel_features
    return function


def test_features_and_probabilities_match_pipecat(turn_model: SmartTurn) -> None:
    """Features agree to ~1e-5 (float32 here, float64 in pipecat). The int8-quantized model usually gives
    the identical probability, but a 1e-6 difference can move one across a quantization step (seen: up
    to 0.03 on a pathological clip, <= 0.008 on 72 ordinary ones)."""
    reference = pipecat_features()
    clips = [in_room(trim(synth(PROMPTS[1]))),
             in_room(trim(synth(PROMPTS[2], "espeak:en-us")))[: -int(0.9 * RATE)],  # cut in mid-tail
             in_room(trim(synth(PROMPTS[5], "espeak:en-us+f3")), seed=3),
             in_room(trim(synth(PROMPTS[7], "piper")), seed=4)[: -int(1.1 * RATE)],
             np.tile(in_room(trim(synth(PROMPTS[3], "espeak:en-us+f3"))), 3)]  # longer than 8 s
    probs, same = [], 0
    for clip in clips:
        audio = window(clip.astype(np.float32) / 32768.0)
        ours = smart_turn.WhisperFeatures()(audio)
        theirs = reference(audio, do_normalize=True)
        assert ours.shape == theirs.shape == (80, 800)
        assert np.abs(ours - theirs).max() < 1e-4
        p_ours, p_theirs = turn_model.prob_complete(clip), turn_model.prob_from_features(theirs)
        assert p_ours == pytest.approx(p_theirs, abs=0.05)
        same += abs(p_ours - p_theirs) < 1e-6
        probs.append(p_ours)
    assert same >= len(clips) // 2 + 1, "most probabilities are bit-for-bit pipecat's"
    assert max(probs) - min(probs) > 0.05, "the clips are not all judged alike"


def test_a_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="model file not found"):
        SmartTurn(model_path=tmp_path / "smart-turn.onnx")


# ---------- all three ----------
@pytest.mark.parametrize(("text", "voice"), [(PROMPTS[0], "piper"), (PROMPTS[4], "piper"),
                                             (PROMPTS[1], "espeak:en-us"), (PROMPTS[8], "espeak:en-us+f3")])
def test_complete_prompts_end_the_turn(vad: SileroVad, turn_model: SmartTurn, text: str, voice: str) -> None:
    config = settings_config()
    speech = trim(synth(text, voice))
    result = run(in_room(speech), vad, config, turn_model, words=[text])
    assert len(result.of(SpeechStarted)) == 1
    (end_frame, ended), = result.of(TurnEnded)
    assert isinstance(ended, TurnEnded)
    assert ended.reason == "agreed"
    # The end of speech is dated by its sound, not by the VAD (which leaves speech 36-93 ms after the true end
    # on these prompts): within one 8 ms sub-block plus a little either side of the true end. A soft word
    # ending quieter than loud_ratio (1 %) of the run's peak is not counted as sound, hence the 30 ms allowed
    # before it (measured: -2 to -8 ms here, -29 ms at worst on other prompts).
    speech_end = LEAD_S + len(speech) / RATE
    assert speech_end - 0.030 <= ended.last_speech_arrival <= speech_end + 0.040, "the end is dated by the sound"
    *_, (_, silenced) = result.of(SilenceStarted)
    assert silenced == SilenceStarted(ended.last_speech_arrival), "the final decode starts from the same end"
    # The delay is now counted from that sound end, not from the VAD's last voiced frame, so it is exactly the
    # silence that decided the turn: still short of the fallback, and at least eot_silence_ms.
    delay = (end_frame + 1) * FRAME_S - ended.last_speech_arrival
    assert delay == pytest.approx(ended.silence_ms / 1000)
    assert config.eot_silence_ms / 1000 <= delay < config.eot_fallback_ms / 1000


# smart-turn calls most *synthetic* mid-sentence pauses "complete" (bench/eot_sweep.py: asked after 160 ms of
# silence, threshold 0.5, it ended the turn inside 75 % of 250 ms, 75 % of 400 ms and 96 % of 600 ms pauses,
# whether the words before the pause had sentence-final or continuing prosody), so with the default
# eot_silence_ms every one of these 400 ms pauses is cut. What keeps them whole is not asking the model
# until the silence outlasts the pause; the price is that every turn then ends >= 480 ms + one model call
# after the end of the sound (~540 ms), instead of ~220 ms. Silence is now counted from the sound's end, not
# from the VAD's last voiced frame, so these 400 ms pauses measure 399-425 ms where the VAD saw 307-345 ms:
# the second half is heard again only one or two frames before the question would be due (three or four when
# the VAD dated the end), so the margin of 480 ms over a 400 ms pause is now thin.
PAUSE_SAFE = {"eot_silence_ms": 480}


@pytest.mark.parametrize(("first", "second", "voice"), [
    ("I would like to book a table", "for two people tonight.", "piper"),
    ("Can you tell me", "what the weather is like tomorrow?", "espeak:en-us"),
    ("My name is", "John and I live in Boston.", "espeak:en-us+f3"),
])
def test_a_400_ms_pause_inside_a_sentence_does_not_end_the_turn(
        vad: SileroVad, turn_model: SmartTurn, first: str, second: str, voice: str) -> None:
    config = settings_config(**PAUSE_SAFE)
    head, tail = trim(synth(first, voice)), trim(synth(second, voice))
    audio = in_room(head, silence(0.4), tail)
    result = run(audio, vad, config, turn_model, words=[first, f"{first} {second}"])
    assert len(result.of(SpeechStarted)) == 1
    assert len(result.of(SpeechResumed)) >= 1, "the pause was seen as silence"
    (_, ended), = result.of(TurnEnded)
    assert isinstance(ended, TurnEnded)
    speech_end = LEAD_S + (len(head) + len(tail)) / RATE + 0.4
    assert ended.last_speech_arrival >= speech_end - 0.1, "the turn ended after the second half"
