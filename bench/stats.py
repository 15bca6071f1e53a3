"""Summaries of latency samples, as tables and as the JSON a run leaves behind."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np


def summary(values: Iterable[float | None]) -> dict[str, float]:
    """n, p50, p95, mean, max of the non-None values (ms); empty dict if there are none."""
    data = np.array([v for v in values if v is not None], dtype=float)
    if data.size == 0:
        return {}
    return {"n": int(data.size), "p50": round(float(np.percentile(data, 50)), 1),
            "p95": round(float(np.percentile(data, 95)), 1), "mean": round(float(data.mean()), 1),
            "max": round(float(data.max()), 1)}


def table(rows: dict[str, dict[str, float]], title: str) -> str:
    """A markdown table: one row per metric, with n, p50, p95, max."""
    lines = [f"\n### {title}", "", "| metric | n | p50 ms | p95 ms | max ms |", "|---|---|---|---|---|"]
    for name, s in rows.items():
        if s:
            lines.append(f"| {name} | {s['n']} | {s['p50']} | {s['p95']} | {s['max']} |")
    return "\n".join(lines)


def save_json(path: Path | None, data: Any) -> None:
    """Write a run's results to `path` (its folder made as needed); nothing when no path was asked for."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2))
