"""The echo guard on synthetic signals: delayed, attenuated, noisy copies of the output are echo;
speech over them is not.

The output goes through a real `Playout` and the guard is fed as the session's hearing job feeds it: in
batches, first every frame the playout handed out since the last batch (`playout.sent`, with the send times
the track passed in), then the batch's incoming frames."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from alice_voice.audio.echo_guard import EchoGuard
from alice_voice.audio.playout import Playout


def speechlike(seconds: float, seed: int) -> np.ndarray:
    """Band-limited noise with a syllable-rate envelope: varied enough that correlation can find the lag."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 48000)
    noise = rng.normal(0, 1, n)
    spectrum = np.fft.rfft(noise)
    freqs = np.fft.rfftfreq(n, 1 / 48000)
    spectrum[(freqs < 100) | (freqs > 3500)] = 0
    voice = np.fft.irfft(spectrum, n)
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * np.arange(n) / 48000)
    out = voice * envelope
    return (out / np.abs(out).max() * 12000).astype(np.int16)


def echo_path(out48: np.ndarray, delay_ms: int, gain: float, grows_by_ms: int = 0, at_s: float = 2.0) -> np.ndarray:
    """What a microphone picks up of `out48` (16 kHz): `gain` times it, `delay_ms` late; from `at_s` on,
    `grows_by_ms` later still (the client's jitter buffer grew after a stall)."""
    echo16 = soxr.resample(out48, 48000, 16000).astype(np.float64) * gain

    def late(ms: int) -> np.ndarray:
        return np.concatenate([np.zeros(ms * 16), echo16])[: len(echo16)]

    step = int(at_s * 16000)
    return np.concatenate([late(delay_ms)[:step], late(delay_ms + grows_by_ms)[step:]])


def waveform_lost(echo16: np.ndarray, seed: int = 3) -> np.ndarray:
    """Every other 32 ms frame keeps its spectrum and loses its waveform (random phases), as Opus rebuilds
    noisy sounds: those frames cannot correlate with the output, only the spectral test can place them."""
    rng = np.random.default_rng(seed)
    out = echo16.copy()
    for start in range(512, len(out) - 511, 1024):
        spectrum = np.fft.rfft(out[start:start + 512])
        phases = np.exp(1j * rng.uniform(0, 2 * np.pi, len(spectrum)))
        out[start:start + 512] = np.fft.irfft(np.abs(spectrum) * phases, 512)
    return out


def play_and_hear(guard: EchoGuard, out48: np.ndarray, delay_ms: int, gain: float, extra16: np.ndarray | None,
                  noise_rms: float = 0.0, batch: int = 1, echo16: np.ndarray | None = None) -> list[tuple[bool, float]]:
    """Play `out48` through a playout ticked every 20 ms and hear the echoed 16 kHz signal (plus `extra16`) in
    32 ms frames, in time order as in a call; every `batch` incoming frames, the guard gets what the playout
    sent since the last batch, then judges those frames. Returns (verdict, user-to-echo energy ratio) per frame.
    `echo16`: the echo as heard, if not `echo_path(out48, delay_ms, gain)`."""
    t0 = 100.0
    playout = Playout(buffer_ms=40)
    playout.begin(1)
    playout.push(1, out48, "reply")
    playout.end(1)
    mic = echo_path(out48, delay_ms, gain) if echo16 is None else echo16.copy()
    echo_only = mic.copy()
    user = np.zeros(len(mic))
    if extra16 is not None:  # the user starts talking 0.8 s into the reply, as in a barge-in
        start = int(0.8 * 16000)
        user[start:] = extra16[: len(mic) - start]
        mic += user
    mic += np.random.default_rng(9).normal(0, noise_rms, len(mic)) if noise_rms else 0
    mic16 = np.clip(mic, -32768, 32767).astype(np.int16)
    events = [(t0 + (i + 1) * 0.02, "out", i) for i in range(len(out48) // 960)]
    events += [(t0 + (j + 1) * 0.032, "mic", j) for j in range(len(mic16) // 512)]
    verdicts = []
    waiting: list[tuple[float, int]] = []
    for t, kind, k in sorted(events):
        if kind == "out":
            np.testing.assert_array_equal(playout.next_frame(t), out48[k * 960:(k + 1) * 960])
            continue
        waiting.append((t, k))
        if len(waiting) < batch:
            continue
        for sent_at, frame in playout.sent:  # what the session hands the hearing job
            guard.played(frame, sent_at)
        playout.sent.clear()
        for arrival, j in waiting:
            if arrival - t0 > delay_ms / 1000 + 0.1:  # once the echo has begun arriving
                window = slice(j * 512, (j + 1) * 512)
                ratio = float(user[window] @ user[window]) / max(float(echo_only[window] @ echo_only[window]), 1.0)
                verdicts.append((guard.is_echo(mic16[window], arrival), ratio))
        waiting = []
    return verdicts


@pytest.mark.parametrize(("delay_ms", "gain", "noise"),
                         [(50, 0.5, 0), (150, 0.2, 0), (250, 0.3, 30), (250, 0.1, 0), (550, 0.3, 30)])
@pytest.mark.parametrize("batch", [1, 8])
def test_delayed_attenuated_echo_is_recognized(delay_ms: int, gain: float, noise: float, batch: int) -> None:
    verdicts = play_and_hear(EchoGuard(), speechlike(2.0, 1), delay_ms, gain, None, noise, batch)
    assert len(verdicts) > 30
    assert np.mean([echo for echo, _ in verdicts]) > 0.9


@pytest.mark.parametrize(("delay_ms", "grows_by_ms"), [(60, 250), (240, 300)])
def test_an_echo_path_that_grows_mid_reply_is_followed_at_once(delay_ms: int, grows_by_ms: int) -> None:
    """A call's echo path grows by a few hundred ms at once (the client's jitter buffer, after a stall). Frames
    that still correlate give the new delay, and the ones that do not are judged at it straight away."""
    out48 = (speechlike(4.0, 1) * (np.sin(2 * np.pi * 2.7 * np.arange(4 * 48000) / 48000) > -0.2)).astype(np.int16)
    heard = waveform_lost(echo_path(out48, delay_ms, 0.3, grows_by_ms))
    verdicts = play_and_hear(EchoGuard(), out48, delay_ms, 0.3, None, echo16=heard)
    judged = [j for j in range(len(heard) // 512) if (j + 1) * 0.032 > delay_ms / 1000 + 0.1]  # as play_and_hear
    assert len(verdicts) == len(judged) > 100
    new_path = 2.0 + (delay_ms + grows_by_ms) / 1000
    sounding = [echo for (echo, _), j in zip(verdicts, judged, strict=True)
                if j * 0.032 > new_path and np.sqrt(np.mean(heard[j * 512:(j + 1) * 512] ** 2)) > 100]
    assert len(sounding) > 20 and all(sounding)


@pytest.mark.parametrize("batch", [1, 8])
def test_speech_over_the_echo_is_not_echo(batch: int) -> None:
    user = soxr.resample(speechlike(2.0, 2), 48000, 16000).astype(np.float64)
    verdicts = play_and_hear(EchoGuard(), speechlike(2.0, 1), 120, 0.3, user, batch=batch)
    user_louder = [echo for echo, ratio in verdicts if ratio >= 10.0]  # the user 10 dB over the echo
    assert len(user_louder) > 10
    assert np.mean(user_louder) < 0.1  # ... is heard as the user, not as echo


def test_one_frame_of_the_user_that_matches_the_output_teaches_the_guard_nothing() -> None:
    """A user frame can, by chance, correlate with some slice of the reply: alone, it is no echo path."""
    out48 = speechlike(2.0, 1)
    chance_match = np.zeros(len(out48) // 3)
    chance_match[10 * 512:11 * 512] = echo_path(out48, 100, 1.0)[10 * 512:11 * 512]
    user = soxr.resample(speechlike(2.0, 2), 48000, 16000).astype(np.float64)
    verdicts = play_and_hear(EchoGuard(), out48, 100, 1.0, user, echo16=chance_match)
    user_frames = [echo for echo, ratio in verdicts if ratio > 0]
    assert len(user_frames) > 30
    assert np.mean(user_frames) < 0.1


def test_nothing_played_means_nothing_is_echo() -> None:
    guard = EchoGuard()
    frame = (np.random.default_rng(0).normal(0, 3000, 512)).astype(np.int16)
    assert guard.is_echo(frame, 5.0) is False
    for i in range(50):
        guard.played(np.zeros(960, np.int16), 5.0 + i * 0.02)
    assert guard.is_echo(frame, 6.0) is False

