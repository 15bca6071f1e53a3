"""The conversation's states as the caller sees them (`turn.state`), and every change between them.

    listening ──speech──▶ user_speaking ──turn ended──▶ thinking ──first audio──▶ speaking ──done──▶ listening
        │                   ▲      │                      │  ▲                     │   ▲
        │ typed turn,       │      │ recognizer failed    │  │ typed turn          │   │ it was a cough,
        │ own words         │      ▼                      │  │                     ▼   │ an "mm-hmm"
        └───────────────────┼─▶ listening ◀───────────────┘  └──────────────── paused ──┘
                            │                  failed, stopped,                  │ (a sound over the reply)
                            └────────── speech over the reply, once it ──────────┘
                                        is known to be a turn (barge-in)

`TRANSITIONS` lists each allowed change; the policy enters a state only through it, so a change the
drawing does not allow is a defect the tests catch, not a state the caller sees.
"""

from __future__ import annotations

from enum import StrEnum


class TurnState(StrEnum):
    LISTENING = "listening"
    USER_SPEAKING = "user_speaking"
    THINKING = "thinking"
    SPEAKING = "speaking"
    PAUSED = "paused"  # the reply waits while the caller makes a sound over it


L, U, T, S, P = TurnState.LISTENING, TurnState.USER_SPEAKING, TurnState.THINKING, TurnState.SPEAKING, TurnState.PAUSED

TRANSITIONS: dict[TurnState, frozenset[TurnState]] = {
    # speech starts a turn; a typed turn, an idle prompt or a reminder is answered at once
    L: frozenset({U, T}),
    # the turn ends; the recognizer fails (the utterance is dropped); a typed turn cuts in
    U: frozenset({T, L}),
    # first audio; the reply fails, is stopped, or ends unheard; the caller speaks again (barge-in or the
    # speculation was wrong); the caller talks over the reply (it pauses)
    T: frozenset({S, L, U, P}),
    # a sound over the reply; the reply is done, stopped or failed; speech cuts it (no pause: BARGE_IN_PAUSE
    # off); a typed turn cuts it
    S: frozenset({P, L, U, T}),
    # it was a cough or an acknowledgement; the sound was a turn (before or after its end); the reply ended
    # or failed meanwhile
    P: frozenset({S, U, T, L}),
}


class InvalidTransition(RuntimeError):
    """The policy tried a change of state that `TRANSITIONS` does not allow: a defect."""
