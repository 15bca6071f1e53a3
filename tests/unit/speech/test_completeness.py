"""The completeness model: what it says of the words at a pause, that it reads words only, how it does on
the hand-written held-out set it was never shaped by, and that its training rebuilds it exactly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from training.completeness.metrics import auc, load_rows

from alice_voice.speech.completeness import feature_ids, load_weights

MODEL = load_weights()
ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("text", [
    "where is my order four two seven?", "What time is it?", "yes", "Set a timer for ten minutes.",
    "Thanks, that's all for now.", "call me at five five five one two three four five six seven",
    "what is seven times eight", "cancel my order number five one two",
])
def test_finished_sentences_read_as_finished(text: str) -> None:
    assert MODEL.prob_complete(text) > 0.5, text


@pytest.mark.parametrize("text", [
    "set a timer for", "Remind me to water the", "the code is four seven", "send a message to",
    "Can you tell me the", "my phone number is five five five", "Please cancel my order number",
    "I'd like to book a table for",
])
def test_sentences_cut_mid_way_read_as_unfinished(text: str) -> None:
    assert MODEL.prob_complete(text) < 0.5, text


def test_it_reads_the_words_not_the_recognizers_punctuation_or_case() -> None:
    assert feature_ids("Set a timer for it.") == feature_ids("set a timer for it")
    assert feature_ids("My PIN is 4 7.") == feature_ids("my pin is four seven")
    assert feature_ids("Order 427?") == feature_ids("order four two seven")


def test_on_the_blind_held_out_set_it_separates_finished_from_cut() -> None:
    """239 utterances written after the weights, in domains the grammar does not cover (0.95 when built)."""
    rows = load_rows(ROOT / "training" / "completeness" / "blind.tsv")
    assert auc([r.finished for r in rows], [MODEL.prob_complete(r.text) for r in rows]) > 0.93


def test_training_rebuilds_the_same_weights_byte_for_byte(tmp_path: Path) -> None:
    outputs = []
    for run in ("first", "second"):
        out = tmp_path / f"{run}.npz"
        subprocess.run([sys.executable, "-m", "training.completeness.train", "--n", "400", "--l2", "1e-5",
                        "--steps", "30", "--out", str(out)], cwd=ROOT, check=True, capture_output=True, timeout=300)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    small = load_weights(str(tmp_path / "first.npz"))
    assert small.prob_complete("set a timer for") < small.prob_complete("set a timer for ten minutes")
