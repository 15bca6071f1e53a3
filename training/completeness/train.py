"""Rebuild the completeness model's weights (src/alice_voice/speech/data/completeness.npz) from nothing but
the grammar: generate utterances and their prefixes (grammar.py), hash their features as the model does
(alice_voice.speech.completeness), and fit a class-balanced, L2-regularized logistic regression by full-batch
gradient descent (AdaGrad) in numpy. Deterministic: the same seed gives the same file, byte for byte.

    .venv/bin/python -m training.completeness.train [--n 60000] [--seed 1] [--out PATH]

~1-2 minutes on one core. The regularization is chosen on a validation split generated apart from the
training one (no shared word sequence); the held-out hand-written sets are not looked at here
(training/completeness/evaluate.py scores them).
"""

from __future__ import annotations

import argparse
import io
import time
import zipfile
from pathlib import Path

import numpy as np

from alice_voice.speech.completeness import HASH_BITS, feature_ids
from training.completeness.grammar import build
from training.completeness.metrics import auc

OUT = Path(__file__).resolve().parents[2] / "src" / "alice_voice" / "speech" / "data" / "completeness.npz"
L2 = (1e-6, 3e-6, 1e-5, 3e-5)
STEPS = 400
RATE = 0.5


def featurize(texts: list[str]) -> np.ndarray:
    """An (n, k) matrix of feature indices, padded with index 2**HASH_BITS (a weight held at 0)."""
    rows = [feature_ids(text) for text in texts]
    width = max(len(r) for r in rows)
    out = np.full((len(rows), width), 1 << HASH_BITS, np.int64)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out


def fit(x: np.ndarray, y: np.ndarray, l2: float, steps: int = STEPS) -> tuple[np.ndarray, float]:
    """Weights (one per hashed feature) and bias of a class-balanced logistic regression."""
    n = len(y)
    sample_weight = np.where(y == 1, n / (2 * y.sum()), n / (2 * (n - y.sum())))
    w = np.zeros((1 << HASH_BITS) + 1)
    b = 0.0
    g2_w = np.full_like(w, 1e-8)
    g2_b = 1e-8
    for _ in range(steps):
        z = w[x].sum(axis=1) + b
        residual = sample_weight * (1.0 / (1.0 + np.exp(-z)) - y) / n
        grad = np.zeros_like(w)
        np.add.at(grad, x, residual[:, None])
        grad += l2 * w
        grad[-1] = 0.0  # the padding's weight stays 0
        g2_w += grad * grad
        w -= RATE * grad / np.sqrt(g2_w)
        grad_b = float(residual.sum())
        g2_b += grad_b * grad_b
        b -= RATE * grad_b / np.sqrt(g2_b)
    return w[:-1], b


def predict(x: np.ndarray, w: np.ndarray, b: float) -> np.ndarray:
    padded = np.append(w, 0.0)
    return 1.0 / (1.0 + np.exp(-(padded[x].sum(axis=1) + b)))


def save(path: Path, **arrays: np.ndarray) -> None:
    """An .npz (what np.load reads) with fixed member times: the same weights give the same bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue(),
                             compress_type=zipfile.ZIP_DEFLATED)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60_000, help="complete utterances to generate")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--l2", type=float, nargs="+", default=L2, help="regularizations to choose from")
    parser.add_argument("--steps", type=int, default=STEPS)
    args = parser.parse_args()
    started = time.perf_counter()
    train = build(args.n, args.seed)
    seen = {key for _, key, _ in train}
    val = [row for row in build(args.n // 6, args.seed + 1000) if row[1] not in seen]
    x_train, y_train = featurize([t for _, _, t in train]), np.array([label for label, _, _ in train], float)
    x_val, y_val = featurize([t for _, _, t in val]), np.array([label for label, _, _ in val], float)
    print(f"{len(train)} training rows ({y_train.mean():.2f} complete), {len(val)} validation rows; "
          f"{time.perf_counter() - started:.0f} s")
    best: tuple[float, float, np.ndarray, float] | None = None
    for l2 in args.l2:
        w, b = fit(x_train, y_train, l2, args.steps)
        score = auc(y_val.tolist(), predict(x_val, w, b).tolist())
        print(f"l2={l2:g}: validation AUC {score:.4f}")
        if best is None or score > best[0]:
            best = (score, l2, w, b)
    assert best is not None
    score, l2, w, b = best
    save(args.out, weights=w.astype(np.float16), bias=np.float32(b), hash_bits=np.int32(HASH_BITS),
         l2=np.float32(l2))
    print(f"l2={l2:g} (validation AUC {score:.4f}): {args.out} ({args.out.stat().st_size // 1024} kB); "
          f"{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
