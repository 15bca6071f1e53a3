"""Score the completeness model on the hand-written held-out sets, beside the word rules it replaced.

    .venv/bin/python -m training.completeness.evaluate [--errors]

written.tsv: 369 utterances written before the grammar (and used to shape it: a check of coverage, not of
generalisation). blind.tsv: 239 written after the weights were frozen, on purpose in domains the grammar
does not cover (banking, insurance, travel, pharmacy, utilities, tech support): the honest number.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from alice_voice.conversation.policy.words import sounds_unfinished
from alice_voice.speech.completeness import load_weights
from training.completeness.metrics import Row, auc, load_rows, operating_points

HERE = Path(__file__).resolve().parent
SETS = ("written.tsv", "blind.tsv")


def report(name: str, rows: list[Row], scores: list[float]) -> str:
    labels = [r.finished for r in rows]
    a, b = operating_points(labels, scores)
    accuracy = sum((s >= 0.5) == bool(r.finished) for r, s in zip(rows, scores, strict=True)) / len(rows)
    return (f"{name}: n={len(rows)} accuracy={accuracy:.3f} AUC={auc(labels, scores):.3f} | holding <= 5 % of the "
            f"finished ones: {a.cut_taken:.1%} of the cut ones taken (at {a.threshold:.3g}) | taking <= 5 % of the "
            f"cut ones: {b.finished_held:.1%} of the finished ones held (at {b.threshold:.3g})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--errors", action="store_true", help="list what each set gets wrong at 0.5")
    args = parser.parse_args()
    model = load_weights()
    for name in SETS:
        rows = load_rows(HERE / name)
        started = time.perf_counter()
        scores = [model.prob_complete(r.text) for r in rows]
        us = (time.perf_counter() - started) * 1e6 / len(rows)
        print(report(f"{name} (model, {us:.0f} µs a call)", rows, scores))
        print(report(f"{name} (word rules)", rows, [0.0 if sounds_unfinished(r.text) else 1.0 for r in rows]))
        if args.errors:
            for r, s in zip(rows, scores, strict=True):
                if (s >= 0.5) != bool(r.finished):
                    print(f"   {r.finished} {s:.3f} [{r.kind}] {r.text}")


if __name__ == "__main__":
    main()
