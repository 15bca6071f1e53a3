"""The Debian espeak-ng CLI as a TTS: tiny and instant, but robotic. One subprocess per sentence.

The text goes in on stdin, never argv, so a sentence starting with "-" cannot turn into an option.
`--stdout` writes a 44-byte WAV header (with a bogus length) before 22050 Hz mono s16le samples.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator

import numpy as np

from alice_voice.audio.frames import Pcm
from alice_voice.compute import InferenceScheduler
from alice_voice.config import Settings
from alice_voice.errors import ProviderError, ProviderTimeout
from alice_voice.speech.protocols import PcmChunk
from alice_voice.speech.sentence_tts import split_sentences

NAME = "espeak-ng"
RATE = 22050
_WAV_HEADER_BYTES = 44


class EspeakTts:
    """Streams one 22050 Hz int16 chunk per sentence; a cancelled synthesis kills its process."""

    name = NAME
    rate = RATE

    def __init__(self, *, voice: str = "en-us", words_per_minute: int = 175, executable: str = "espeak-ng",
                 timeout_s: float = 10.0) -> None:
        self._argv = [executable, "-v", voice, "-s", str(words_per_minute), "--stdin", "--stdout"]
        self._timeout_s = timeout_s

    def warm(self) -> None:
        """Runs once, blocking: a missing binary or unknown voice fails at start-up, not mid-call."""
        if shutil.which(self._argv[0]) is None:
            raise ProviderError(NAME, f"{self._argv[0]!r} not found; install the espeak-ng package")
        done = subprocess.run(self._argv, input=b"Hello.", capture_output=True, timeout=self._timeout_s,
                              check=False)
        if done.returncode != 0 or len(done.stdout) <= _WAV_HEADER_BYTES:
            raise ProviderError(NAME, _failure(done.returncode, done.stderr))

    async def synthesize(self, text: str, *, lead: bool = False) -> AsyncIterator[PcmChunk]:
        for sentence in split_sentences(text):
            samples = await self._run(sentence)
            if len(samples):
                yield PcmChunk(samples=samples, rate=RATE, text=sentence)

    async def _run(self, sentence: str) -> Pcm:
        proc = await asyncio.create_subprocess_exec(
            *self._argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        try:
            async with asyncio.timeout(self._timeout_s):
                out, err = await proc.communicate(sentence.encode())
        except TimeoutError:
            raise ProviderTimeout(NAME, f"no audio within {self._timeout_s:g} s") from None
        finally:
            if proc.returncode is None:
                await _kill(proc)
        if proc.returncode != 0:
            raise ProviderError(NAME, _failure(proc.returncode, err))
        pcm = out[_WAV_HEADER_BYTES:]
        return np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.int16)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    # Reap it too, so a cancelled turn leaves no zombie; ProcessLookupError: it exited meanwhile.
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()


def _failure(returncode: int | None, stderr: bytes) -> str:
    reason = stderr.decode(errors="replace").strip().splitlines()
    return f"exit status {returncode}: {reason[0] if reason else 'no message'}"


def load(settings: Settings, compute: InferenceScheduler | None = None) -> EspeakTts:
    tts = EspeakTts(voice=settings.tts_voice or "en-us", timeout_s=settings.tts_timeout_s)
    tts.warm()
    return tts
