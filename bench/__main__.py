"""`python -m bench {transport,turns,all}`: latency numbers to stdout, JSON and a PNG plot.

Numbers are never asserted in tests; they go to the README with the command that produced them.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import time
from pathlib import Path
from typing import Any

from bench import barge_in, load, pauses, plot, talk_over, transport, turns
from bench.stats import save_json, table


def _print_transport(result: dict[str, Any]) -> None:
    for label in ("sequential", *[k for k in result if k.endswith("_concurrent")]):
        print(table(result[label], f"transport, {label.replace('_', ' ')} sessions"))
    print(table(result["store"], "session store (Redis)"))


def _print_turns(result: dict[str, Any]) -> None:
    for label, level in result.items():
        rows = {f"gateway {k}": v for k, v in level["gateway"].items()}
        rows.update({f"client {k}": v for k, v in level["client"].items()})
        print(table(rows, f"turns, {label.replace('_', ' ')} ({level['turns']} turns)"))
        print(f"\nWER {level['wer']} {level['wer_by_voice']}; gateway CPU {level['gateway_cpu_cores']} cores "
              f"({level['cpu_cores_per_session']} per session)")
        for prompt, heard in level["misheard"]:
            print(f"  misheard: {prompt!r} -> {heard!r}")


def _print_barge_in(result: dict[str, Any]) -> None:
    print(table({"gateway barge_in_ms": result["gateway_barge_in_ms"],
                 "client barge_in_ms": result["client_barge_in_ms"]}, "barge-in"))
    echo = result["echo_loopback"]
    print(f"\nmissed barge-ins: {result['missed']} of {result['interruptions']}; echo loop-back: "
          f"{echo['false_barge_ins']} false barge-ins in {echo['reply_minutes']} min of reply {echo['runs']}")


def _print_load(result: dict[str, Any]) -> None:
    for level in result.values():
        rows = {f"client {k}": v for k, v in level["client"].items()}
        rows.update({f"gateway {k}": v for k, v in level["gateway"].items()})
        rows["client - gateway first audio"] = level["gap_ms"]
        print(table(rows, f"load, {level['callers']} callers arriving {level['arrivals']} at "
                    f"{level['arrival_offsets_s']} s ({level['admitted']} admitted, {level['refused']} "
                    f"refused, {level['turns']} turns, {level['unanswered']} unanswered, "
                    f"{level['false_starts']} false starts)"))
        waits, runs = (", ".join(f"{p} {w['p50']}/{w['p95']}" for p, w in level[kind].items())
                       for kind in ("scheduler_wait_ms", "scheduler_run_ms"))
        print(f"\nWER {level['wer']}; frames {level['frames']}; event-loop lag p99 "
              f"{level['event_loop_lag_p99_ms']} ms; gateway CPU {level['gateway_cpu_cores']} cores (the callers' "
              f"processes {level['callers_cpu_cores']}); "
              f"RSS {level['rss_mb']}\nscheduler wait p50/p95 ms: {waits}\nscheduler run p50/p95 ms: {runs}")
        stages = ", ".join(f"{stage} {cores}" for stage, cores in level["cores_per_caller_by_stage"].items())
        print(f"cores per admitted caller: {level['cores_per_caller']} ({stages}); jobs {level['scheduler_jobs']}")
        print(f"each admitted caller's client TTFA p95: {level['per_caller_first_audio_p95_ms']} ms; less "
              f"patience: {level['per_caller_first_audio_less_patience_p95_ms']} ms; turns over the budget "
              f"{level['budget_breaches']} of {level['turns']}; callers dialled up to "
              f"{level['dialled_late_s_max']} s late")
        for prompt, heard in level["misheard"]:
            print(f"  misheard: {prompt!r} -> {heard!r}")


def _print_talk_over(result: dict[str, Any]) -> None:
    print(table({"kept reply silent (from the caller's first sound)": result["silent_ms"],
                 "kept reply heard again after the acknowledgement": result["resumed_after_ms"],
                 "interruption: reply heard silent": result["barge_in_client_ms"],
                 "end of turn decided": result["turns"]["end_of_turn_ms"],
                 "TTFA, client": result["turns"]["client_first_audio_ms"],
                 "TTFA, gateway": result["turns"]["gateway_first_audio_ms"]}, "talk-over"))
    print(f"\nacknowledgements kept {result['kept']} of {result['acknowledgements']} ({result['kept_share']:.0%}); "
          f"interruptions honoured {result['honoured']} of {result['interruptions']}; turns "
          f"{result['turns']['count']}, false starts {result['turns']['false_starts']}, WER {result['turns']['wer']}")
    for text, voice, heard in result["missed"]:
        print(f"  missed: {text!r} ({voice}) heard as {heard!r}")


def _print_pauses(results: dict[str, Any]) -> None:
    for name, result in results.items():
        print(f"\n## {name}")
        _print_pauses_of(result)


def _print_pauses_of(result: dict[str, Any]) -> None:
    for pause_ms, row in result["by_pause"].items():
        print(f"pause {pause_ms} ms after an unfinished word: turn ended in the pause {row['ended_in_pause']} "
              f"of {row['n']}, reply heard over it (false start) {row['false_starts']} of {row['n']}")
    finished = result["finished"]
    print(table({"end of turn decided": finished["end_of_turn_ms"],
                 "TTFA, client": finished["client_first_audio_ms"]}, f"{finished['n']} finished requests"))
    for text, voice, pause_ms in result["false_starts"]:
        print(f"  false start: {text!r} ({voice}, {pause_ms} ms)")
    for text, voice, end_ms, first_audio_ms in result["finished_turns"]:
        heard = first_audio_ms and round(first_audio_ms)
        print(f"  finished: {text!r} ({voice}): end of turn {end_ms} ms, first audio {heard} ms")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("what", choices=["transport", "turns", "load", "barge-in", "talk-over", "pauses", "all"])
    parser.add_argument("--json", type=Path, help="write the numbers here")
    parser.add_argument("--plot", type=Path, help="write a PNG plot here")
    parser.add_argument("--sessions", default="1,2,4", help="concurrency levels for the turns benchmark")
    parser.add_argument("--callers", default="1,2,4,6", help="callers at once, per level of the load benchmark")
    parser.add_argument("--arrivals", default=",".join(load.ARRIVALS),
                        help="how the load benchmark's callers arrive: poisson (random), stagger (0.3 s apart)")
    parser.add_argument("--voices", default="piper,espeak:en-us", help="test voices (see tests/speech_fixtures.py)")
    parser.add_argument("--prompts", type=int, default=12, help="how many of the synthesized prompts")
    args = parser.parse_args()

    out: dict[str, Any] = {"machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
                           "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    if args.what in ("transport", "all"):
        out["transport"] = asyncio.run(transport.run())
        _print_transport(out["transport"])
    if args.what in ("turns", "all"):
        levels = [int(n) for n in args.sessions.split(",")]
        out["turns"] = asyncio.run(turns.run(levels, args.voices.split(","), args.prompts))
        _print_turns(out["turns"])
    if args.what in ("load", "all"):
        callers = [int(n) for n in args.callers.split(",")]
        out["load"] = asyncio.run(load.run(callers, args.voices.split(","), args.prompts, args.arrivals.split(",")))
        _print_load(out["load"])
    if args.what in ("talk-over", "all"):
        out["talk_over"] = asyncio.run(talk_over.run(args.voices.split(","), args.prompts))
        _print_talk_over(out["talk_over"])
    if args.what in ("pauses", "all"):
        out["pauses"] = asyncio.run(pauses.run())
        _print_pauses(out["pauses"])
    if args.what in ("barge-in", "all"):
        out["barge_in"] = asyncio.run(barge_in.run(args.voices.split(","), min(args.prompts, 6)))
        _print_barge_in(out["barge_in"])
    save_json(args.json, out)
    if args.plot:
        plot.write(out, args.plot)


if __name__ == "__main__":
    main()
