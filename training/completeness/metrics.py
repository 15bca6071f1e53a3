"""How a completeness score is judged on labelled utterances (1: finished, 0: cut mid-sentence)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Row:
    finished: int
    kind: str  # what sort of utterance (question, command, number, hesitation...); "" if not said
    text: str


def load_rows(path: Path) -> list[Row]:
    """A TSV of `label<TAB>[kind<TAB>]text`; `#` comments and the header line are skipped."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith(("#", "label\t")):
            continue
        parts = line.split("\t")
        rows.append(Row(int(parts[0]), parts[1] if len(parts) == 3 else "", parts[-1]))
    return rows


def auc(labels: Sequence[float], scores: Sequence[float]) -> float:
    """ROC AUC by ranks (ties count a half)."""
    pairs = sorted(zip(scores, labels, strict=True))
    positives = sum(labels)
    negatives = len(labels) - positives
    rank_sum, i = 0.0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        rank_sum += (i + 1 + j) / 2.0 * sum(label for _, label in pairs[i:j])
        i = j
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    threshold: float  # "finished" at a score at or above it
    finished_held: float  # share of finished utterances scored below it (they would be waited on)
    cut_taken: float  # share of cut utterances scored at or above it (they would be answered early)


def operating_points(labels: Sequence[int], scores: Sequence[float], budget: float = 0.05
                     ) -> tuple[OperatingPoint, OperatingPoint]:
    """(A) the highest threshold holding at most `budget` of the finished ones, and (B) the lowest taking at
    most `budget` of the cut ones."""
    finished = [s for s, label in zip(scores, labels, strict=True) if label]
    cut = [s for s, label in zip(scores, labels, strict=True) if not label]

    def point(t: float) -> OperatingPoint:
        return OperatingPoint(t, sum(s < t for s in finished) / len(finished), sum(s >= t for s in cut) / len(cut))

    candidates = [*sorted(set(scores)), float("inf")]
    a = point(max(t for t in candidates if point(t).finished_held <= budget))
    b = point(min(t for t in candidates if point(t).cut_taken <= budget))
    return a, b
