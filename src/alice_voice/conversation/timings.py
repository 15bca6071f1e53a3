"""One turn's timings on the gateway's monotonic clock, and the latencies derived from them (ms)."""

from __future__ import annotations

from dataclasses import dataclass


def _ms(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round((end - start) * 1000, 1)


@dataclass
class TurnTimings:
    """Marks of a turn. `user_start`/`user_end`: arrival of its first/last speech frame (or the text)."""

    user_start: float
    user_end: float | None = None
    first_partial: float | None = None
    final_ready: float | None = None
    turn_ended: float | None = None
    reply_started: float | None = None
    agent_first_text: float | None = None
    tts_first_audio: float | None = None
    first_audio_sent: float | None = None
    barge_in_speech: float | None = None
    barge_in_silenced: float | None = None
    patience: float = 0.0  # silence waited beyond the shortest end of turn, because the evidence asked (s)
    text_turn: bool = False

    def report(self) -> dict[str, float]:
        """The latencies that were reached (DESIGN.md section 5 names), in ms."""
        end = self.user_end
        values = {
            "first_partial_ms": _ms(self.user_start, self.first_partial),
            "final_after_speech_ms": _ms(end, self.final_ready),
            "end_of_turn_ms": _ms(end, self.turn_ended),
            "reply_start_after_speech_ms": _ms(end, self.reply_started),
            "agent_first_text_ms": _ms(self.reply_started, self.agent_first_text),
            "tts_first_audio_ms": _ms(self.reply_started, self.tts_first_audio),
            "first_audio_ms": _ms(end, self.first_audio_sent),
            "barge_in_ms": _ms(self.barge_in_speech, self.barge_in_silenced),
            "patience_ms": round(self.patience * 1000, 1) if self.patience else None,
        }
        return {name: value for name, value in values.items() if value is not None}
