"""Listening: 16 kHz audio in -> VAD -> endpointer (+ end-of-turn model) -> streaming ASR.

One per session. It owns the session's VAD stream, the current utterance's ASR stream, and the audio
of the turn so far (for the end-of-turn model and the pre-roll). It reports what it hears to a
`ListenerEvents` sink and never decides what the conversation does about it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from typing import Any, Protocol

import numpy as np

from alice_voice.audio.frames import Framer, Pcm, PcmFrame
from alice_voice.conversation.endpointer import (
    AskEndOfTurn,
    Endpointer,
    Event,
    Phase,
    SilenceStarted,
    SpeechResumed,
    SpeechStarted,
    TurnEnded,
)
from alice_voice.errors import ProviderError
from alice_voice.logs import SessionLogger
from alice_voice.speech.protocols import AsrStream, EndOfTurnModel, StreamingAsr, Transcript, VadStream

_MAX_TURN_S = 60  # the end-of-turn model reads the last 8 s; the ASR keeps its own copy


class ListenerEvents(Protocol):
    def speech_onset(self, arrival: float) -> None:
        """A first speech frame, before it is known to be a turn (barge-in may pause on it)."""
        ...

    def onset_lost(self) -> None:
        """The onset did not become a turn (a cough, a click)."""
        ...

    def speech_started(self, event: SpeechStarted) -> bool:
        """A turn began; True if it continues the last utterance (decoded on as one), False if new."""
        ...

    def silence_started(self, event: SilenceStarted) -> None: ...

    def speech_resumed(self, event: SpeechResumed) -> None: ...

    def turn_ended(self, event: TurnEnded) -> None: ...

    def transcript(self, transcript: Transcript, final_expected: bool) -> None:
        """`final_expected`: a final covering exactly this transcript's samples is the one awaited."""
        ...

    def failed(self, error: ProviderError) -> None: ...


class Listener:
    def __init__(self, *, vad: VadStream, endpointer: Endpointer, asr: StreamingAsr,
                 end_of_turn: EndOfTurnModel | None, eot_executor: Executor, sink: ListenerEvents,
                 log: SessionLogger, hear: Callable[[PcmFrame], Pcm | None] = lambda frame: frame.samples) -> None:
        self._vad = vad
        self._endpointer = endpointer
        self._asr_model = asr
        self._eot = end_of_turn
        self._eot_executor = eot_executor
        self._sink = sink
        self._log = log
        self._hear = hear
        self._framer = Framer(vad.frame_samples, 16_000)
        self._recent: deque[Pcm] = deque(maxlen=endpointer.config.frames(endpointer.config.vad_preroll_ms) + 64)
        self._turn: list[Pcm] = []
        self._turn_samples = 0
        self._pause: list[Pcm] = []
        self._asr: AsrStream | None = None
        self._pushed = 0
        self._finish_at: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._onset = False

    def push(self, chunk: PcmFrame) -> None:
        """Audio as it arrives (any chunk size); runs VAD inline (about 1 ms a 32 ms frame).

        The ASR gets speech, and a pause only once speech resumes after it: trailing silence never
        reaches it, so the final asked for when silence began stays the final of the turn. The
        end-of-turn model gets everything, trailing silence included, as it was trained.
        """
        for frame in self._framer.push(chunk.samples, chunk.arrival):
            heard = self._hear(frame)  # what of it may be the user (None: nothing, it is our own echo)
            prob = self._vad.prob(heard) if heard is not None else 0.0
            self._recent.append(frame.samples)
            opened = self._handle(self._endpointer.on_frame(prob, frame.arrival))
            self._track_onset(frame.arrival)
            if opened or self._asr is None:
                continue
            phase = self._endpointer.phase
            if phase is Phase.SPEAKING:
                for held in self._pause:
                    self._push_asr(held)
                self._pause.clear()
                self._push_asr(frame.samples)
            elif phase is Phase.PAUSING:
                self._pause.append(frame.samples)
            if phase is not Phase.IDLE:
                self._add_turn_audio(frame.samples)

    def _track_onset(self, arrival: float) -> None:
        pending = self._endpointer.onset_frames > 0
        if pending and not self._onset:
            self._sink.speech_onset(arrival)
        elif self._onset and not pending and not self._endpointer.in_turn:
            self._sink.onset_lost()
        self._onset = pending

    def cancel_turn(self) -> None:
        """Drop the utterance in progress (after a failure, or when the session ends)."""
        self._endpointer.reset()
        self._close_asr()

    async def aclose(self) -> None:
        self._close_asr()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._vad.close()

    # ---------- endpointer events ----------
    def _handle(self, events: list[Event]) -> bool:
        """Carry out the endpointer's events; True if a new utterance was opened (with this frame)."""
        opened = False
        for event in events:
            if isinstance(event, SpeechStarted):
                if self._sink.speech_started(event) and self._asr is not None:
                    self._continue_asr(event.keep_frames)
                else:
                    self._open_asr(event.keep_frames)
                opened = True
            elif isinstance(event, SilenceStarted):
                self._finish_asr()
                self._sink.silence_started(event)
            elif isinstance(event, SpeechResumed):
                self._finish_at = None
                self._sink.speech_resumed(event)
            elif isinstance(event, AskEndOfTurn):
                self._spawn(self._ask_end_of_turn(event.ask_id))
            else:
                self._finish_asr()  # already asked when silence began, unless speech resumed since
                self._sink.turn_ended(event)
        return opened

    def _open_asr(self, keep_frames: int) -> None:
        self._close_asr()
        self._asr = self._asr_model.stream()
        self._turn, self._turn_samples, self._pushed, self._pause = [], 0, 0, []
        for samples in list(self._recent)[-keep_frames:]:
            self._push_asr(samples)
            self._add_turn_audio(samples)
        self._spawn(self._read_transcripts(self._asr))

    def _continue_asr(self, keep_frames: int) -> None:
        """Go on with the same utterance: its next final covers what was said before the pause too."""
        self._finish_at, self._pause = None, []
        for samples in list(self._recent)[-keep_frames:]:
            self._push_asr(samples)
            self._add_turn_audio(samples)

    def _push_asr(self, samples: Pcm) -> None:
        assert self._asr is not None
        self._asr.push(samples)
        self._pushed += len(samples)

    def _add_turn_audio(self, samples: Pcm) -> None:
        self._turn.append(samples)
        self._turn_samples += len(samples)
        while self._turn_samples > _MAX_TURN_S * 16_000:
            self._turn_samples -= len(self._turn.pop(0))

    def _finish_asr(self) -> None:
        if self._asr is not None and self._finish_at != self._pushed:
            self._finish_at = self._pushed
            self._asr.finish()

    def _close_asr(self) -> None:
        stream, self._asr, self._finish_at = self._asr, None, None
        if stream is not None:
            self._spawn(stream.aclose())

    # ---------- background work ----------
    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read_transcripts(self, stream: AsrStream) -> None:
        try:
            async for transcript in stream:
                if stream is not self._asr:
                    return
                self._sink.transcript(transcript, transcript.final and transcript.samples == self._finish_at)
        except ProviderError as exc:
            if stream is self._asr:
                self._close_asr()
                self._endpointer.reset()
                self._sink.failed(exc)

    async def _ask_end_of_turn(self, ask_id: int) -> None:
        if self._eot is None:
            return
        audio = np.concatenate(self._turn) if self._turn else np.zeros(0, np.int16)
        loop = asyncio.get_running_loop()
        try:
            prob = await loop.run_in_executor(self._eot_executor, self._eot.prob_complete, audio)
        except Exception as exc:  # a broken model must not end the session: the fallback still ends turns
            self._log.warning("end-of-turn model failed: %s", exc)
            return
        self._handle(self._endpointer.on_end_of_turn(ask_id, prob))

