"""Embedded TTS plumbing: split text into sentences, synthesize each off the event loop, yield it at once.

Shared by the in-process engines (hibari, Piper). The blocking engine call runs in the loop's default
executor, one sentence per call, so the first chunk is ready after the first sentence only and closing
the iterator stops before the next sentence starts.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Sequence

from alice_voice.audio.frames import Pcm
from alice_voice.speech.protocols import PcmChunk

# End punctuation (optionally closed by a quote or bracket), whitespace, then anything but a lowercase
# letter: "e.g. this" and "3.5" stay whole. Two lookbehinds because Python's must be fixed-width.
_CLOSERS = "\"\u201d\u2019)]"  # straight quote, right double and single quotes, brackets
_SENTENCE_END = re.compile(rf"(?:(?<=[.!?…])|(?<=[.!?…][{re.escape(_CLOSERS)}]))\s+(?=[^\sa-z])")

SentenceSynth = Callable[[str], Sequence[Pcm]]
"""Blocking: one sentence -> its audio, in one or more pieces (an engine may cut a long sentence)."""


def split_sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_END.split(text.strip()) if part.strip()]


async def synthesize_sentences(sentences: Sequence[str], synth: SentenceSynth,
                               rate: int) -> AsyncIterator[PcmChunk]:
    """One chunk per piece of audio, as soon as its sentence is done.

    A sentence's text rides on its first non-empty piece, so a listener that plays a prefix of the chunks
    can tell which sentences were (at least partly) heard. A cancelled or closed iterator leaves at most
    the sentence in progress to finish in its worker thread; nothing further is started.
    """
    loop = asyncio.get_running_loop()
    for sentence in sentences:
        pieces = await loop.run_in_executor(None, synth, sentence)
        text = sentence
        for piece in pieces:
            if len(piece) == 0:
                continue
            yield PcmChunk(samples=piece, rate=rate, text=text)
            text = ""
