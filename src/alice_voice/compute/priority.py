"""What model work there is, in the order it may delay each other, and which threads run it.

Highest first. Each level names the moment a caller is waiting for:

    HEARING        VAD and echo guard on incoming frames: every turn boundary and every barge-in waits on it
    END_OF_TURN    the end-of-turn model: the reply is held until it answers
    FINAL          the final decode of an utterance: the reply is written from it
    FIRST_TTS      the first sentence of a reply: the caller hears nothing until it is synthesized
    TTS            later sentences: they only have to stay ahead of playout
    FIRST_PARTIAL  an utterance's first partial: the caller sees their words appear
    PARTIAL        later partials: each one makes the one before it out of date

Lanes are groups of worker threads. A job runs only on a lane that serves its priority, and each lane
takes its highest-priority job first. Two rules shape them:

- a short job never queues behind a long one: hearing (~1 ms a frame) has a thread of its own, and so do
  the end-of-turn question and a reply's first sentence (~30-60 ms), apart from final decodes (~100-250
  ms); jobs already running share the cores as the kernel schedules them;
- the background lane runs at a lower OS priority (nice), so a partial decode never holds a core that
  foreground work needs: the kernel preempts it, which a user-space queue cannot do to a CTranslate2 or
  ONNX call already running.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Priority(IntEnum):
    HEARING = 0
    END_OF_TURN = 1
    FINAL = 2
    FIRST_TTS = 3
    TTS = 4
    FIRST_PARTIAL = 5
    PARTIAL = 6

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Lane:
    """`threads` workers at OS niceness `nice`, taking jobs of the `serves` priorities, highest first."""

    name: str
    threads: int
    serves: frozenset[Priority]
    nice: int = 0


FOREGROUND = frozenset({Priority.HEARING, Priority.END_OF_TURN, Priority.FINAL, Priority.FIRST_TTS,
                        Priority.FIRST_PARTIAL})
BACKGROUND = frozenset({Priority.TTS, Priority.PARTIAL})
BACKGROUND_NICE = 10  # CFS weight 110 against 1024 at nice 0: ~10 % of a core when a foreground job wants it


def default_lanes(cores: int) -> tuple[Lane, ...]:
    """One thread that only hears, so a barge-in never waits behind anything; per core, one thread for the
    turn's short jobs, one for decodes a caller waits for (finals, and an utterance's first partial: the
    moment their words appear), and one background thread: foreground work gets every core, background
    work whatever is left."""
    return (
        Lane("hearing", 1, frozenset({Priority.HEARING})),
        Lane("turn", cores, frozenset({Priority.END_OF_TURN, Priority.FIRST_TTS})),
        Lane("decode", cores, frozenset({Priority.FINAL, Priority.FIRST_PARTIAL})),
        Lane("background", cores, BACKGROUND, nice=BACKGROUND_NICE),
    )
