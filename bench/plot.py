"""The benchmark's PNG: where a turn's time goes, and latencies against concurrency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def write(results: dict[str, Any], path: Path) -> None:
    panels = [p for p in (_transport, _turn_stages, _concurrency, _load_latency, _load_waits) if p(results, None)]
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for panel, ax in zip(panels, axes[0], strict=True):
        panel(results, ax)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _bars(ax: Any, rows: dict[str, dict[str, float]], title: str) -> None:
    names = [n for n, s in rows.items() if s]
    p50 = [rows[n]["p50"] for n in names]
    p95 = [rows[n]["p95"] for n in names]
    y = range(len(names))
    ax.barh([i + 0.2 for i in y], p95, height=0.4, label="p95", color="#f2a65a")
    ax.barh([i - 0.2 for i in y], p50, height=0.4, label="p50", color="#3d7ea6")
    ax.set_yticks(list(y), names, fontsize=8)
    ax.set_xlabel("ms")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)


def _transport(results: dict[str, Any], ax: Any) -> bool:
    data = results.get("transport")
    if data and ax is not None:
        _bars(ax, {**data["sequential"], **data["store"]}, "transport (sequential sessions)")
    return bool(data)


def _turn_stages(results: dict[str, Any], ax: Any) -> bool:
    data = results.get("turns", {}).get("1_sessions")
    if data and ax is not None:
        rows = {**data["gateway"], **{f"client {k}": v for k, v in data["client"].items()}}
        _bars(ax, rows, "one session: a turn's stages (from the last speech frame)")
    return bool(data)


def _concurrency(results: dict[str, Any], ax: Any) -> bool:
    data = results.get("turns", {})
    if len(data) < 2:
        return False
    if ax is not None:
        levels = sorted(data.values(), key=lambda level: level["sessions"])
        xs = [level["sessions"] for level in levels]
        for metric, colour in (("first_audio_ms", "#3d7ea6"), ("first_partial_ms", "#7aa95c")):
            for q, style in (("p50", "-"), ("p95", "--")):
                ax.plot(xs, [level["gateway"][metric].get(q) for level in levels], style, color=colour,
                        marker="o", label=f"{metric} {q}")
        ax.set_xlabel("concurrent sessions")
        ax.set_ylabel("ms")
        ax.set_xticks(xs)
        ax.set_title("gateway latency under load", fontsize=10)
        ax.legend(fontsize=8)
    return True


def _levels(results: dict[str, Any], arrivals: str | None = None) -> list[dict[str, Any]]:
    """The load levels (each arrival pattern's, with the one-caller level in each), by callers."""
    load = [v for v in results.get("load", {}).values() if isinstance(v, dict) and "callers" in v]
    if arrivals is not None:
        load = [v for v in load if v["arrivals"] == arrivals or v["callers"] == 1]
    return sorted(load, key=lambda level: level["callers"])


def _load_latency(results: dict[str, Any], ax: Any) -> bool:
    levels = _levels(results)
    if not levels:
        return False
    if ax is not None:
        patterns = sorted({level["arrivals"] for level in levels if level["callers"] > 1}) or [levels[0]["arrivals"]]
        for pattern, marker in zip(patterns, "os^", strict=False):
            shown = _levels(results, pattern)
            xs = [level["callers"] for level in shown]
            series = (("first_audio_ms", "#3d7ea6"), ("first_audio_less_patience_ms", "#9cc3db"),
                      ("first_partial_ms", "#7aa95c"))
            for metric, colour in series:
                for q, style in (("p50", "-"), ("p95", "--")):
                    ax.plot(xs, [level["client"][metric].get(q) for level in shown], style, color=colour,
                            marker=marker, label=f"{pattern}: {metric} {q}")
            for level in shown:
                if level["refused"]:
                    ax.annotate(f"{level['refused']} refused", (level["callers"], level["client"]["first_audio_ms"]
                                                               .get("p95", 0)), fontsize=8)
        ax.set_xlabel("callers dialling (client clock)")
        ax.set_ylabel("ms")
        ax.set_title("load: first reply audio and first partial", fontsize=10)
        ax.legend(fontsize=6)
    return True


def _load_waits(results: dict[str, Any], ax: Any) -> bool:
    levels = _levels(results)
    if not levels:
        return False
    if ax is not None:
        xs = [level["callers"] for level in levels]
        priorities = sorted({p for level in levels for p in level["scheduler_wait_ms"]})
        for priority in priorities:
            ax.plot(xs, [level["scheduler_wait_ms"].get(priority, {}).get("p95") for level in levels], marker="o",
                    label=priority)
        ax.set_yscale("symlog", linthresh=1)
        ax.set_xlabel("callers at once")
        ax.set_ylabel("queue wait p95 (ms)")
        ax.set_xticks(xs)
        ax.set_title("inference scheduler: queue wait by priority", fontsize=10)
        ax.legend(fontsize=7)
    return True
