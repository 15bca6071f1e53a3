"""Embedded TTS plumbing: split text into sentences, synthesize each through the scheduler, yield it at once.

Shared by the in-process engines (hibari, Piper). The blocking engine call runs as one scheduler job per
sentence, so the first chunk is ready after the first sentence only, and closing the iterator withdraws
the next sentence's job. The first sentence of a reply (`lead`) goes at FIRST_TTS: the caller hears
nothing until it is done; the rest at TTS, which only has to stay ahead of playout.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Callable, Sequence

from alice_voice.audio.frames import Pcm
from alice_voice.compute import JobRunner, Priority
from alice_voice.speech.protocols import PcmChunk

# End punctuation (optionally closed by a quote or bracket), whitespace, then anything but a lowercase
# letter: "e.g. this" and "3.5" stay whole. Two lookbehinds because Python's must be fixed-width.
_CLOSERS = "\"\u201d\u2019)]"  # straight quote, right double and single quotes, brackets
_SENTENCE_END = re.compile(rf"(?:(?<=[.!?…])|(?<=[.!?…][{re.escape(_CLOSERS)}]))\s+(?=[^\sa-z])")

SentenceSynth = Callable[[str], Sequence[Pcm]]
"""Blocking: one sentence -> its audio, in one or more pieces (an engine may cut a long sentence)."""


def split_sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_END.split(text.strip()) if part.strip()]


async def synthesize_sentences(sentences: Sequence[str], synth: SentenceSynth, rate: int, compute: JobRunner, *,
                               lead: bool) -> AsyncIterator[PcmChunk]:
    """One chunk per piece of audio, as soon as its sentence is done.

    A sentence's text rides on its first non-empty piece, so a listener that plays a prefix of the chunks
    can tell which sentences were (at least partly) heard. A cancelled or closed iterator leaves at most
    the sentence in progress to finish in its worker thread; nothing further is started.
    """
    for n, sentence in enumerate(sentences):
        priority = Priority.FIRST_TTS if lead and n == 0 else Priority.TTS
        pieces = await compute.run(priority, functools.partial(synth, sentence))
        text = sentence
        for piece in pieces:
            if len(piece) == 0:
                continue
            yield PcmChunk(samples=piece, rate=rate, text=text)
            text = ""
