"""Each turn's timings, reported once (`FinishTurn`): when its reply has played out or failed, or, for a
reply cut by a barge-in, once both the cut and its first silent frame are known (the barge-in's latency
runs from the caller's first sound to that frame). Pure."""

from __future__ import annotations

import dataclasses

from alice_voice.conversation.policy import actions as act
from alice_voice.conversation.timings import TurnTimings


class TurnReports:
    def __init__(self) -> None:
        self._reported = 0
        self._cut_turn: TurnTimings | None = None  # a cut turn waiting for its first silent frame
        self._silenced_at: float | None = None

    def finish(self, turn: TurnTimings | None) -> list[act.Action]:
        if turn is None:
            return []
        self._reported += 1
        return [act.FinishTurn(self._reported, turn.report(), dataclasses.asdict(turn))]

    def cut(self, turn: TurnTimings | None) -> list[act.Action]:
        """A reply that had started playing was cut: its turn is reported once it is heard as silence."""
        self._cut_turn = turn
        return self._settle()

    def silenced(self, at: float) -> list[act.Action]:
        self._silenced_at = at
        return self._settle()

    @property
    def waiting(self) -> bool:
        return self._cut_turn is not None

    def forget_silence(self) -> None:
        """The pause it would have dated was undone (the reply resumed)."""
        self._silenced_at = None

    def _settle(self) -> list[act.Action]:
        turn, silenced = self._cut_turn, self._silenced_at
        if turn is None or silenced is None:
            return []
        self._cut_turn = self._silenced_at = None
        actions: list[act.Action] = []
        if turn.barge_in_speech is not None:
            turn.barge_in_silenced = silenced
            actions.append(act.Measure("barge_in_ms", (silenced - turn.barge_in_speech) * 1000))
        return [*actions, *self.finish(turn)]
