"""`python -m bench.soak`: the reliability suite (tests/reliability) at its LONG sizes, figures to JSON.

It runs pytest in a child process with ALICE_SOAK=1 (long sizes) and ALICE_SOAK_JSON=<file>, where each
test writes its figures (tests/reliability/probes.report); the figures, the machine and the outcome are
printed and, with --json, written. `--short` runs the CI sizes instead; `--only churn,load` picks files;
`-k` is passed to pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.stats import save_json

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("churn", "load", "faults", "fuzz")


def run(parts: list[str], long: bool, keyword: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        figures_path = Path(tmp) / "figures.json"
        env = {**os.environ, "ALICE_SOAK": "1" if long else "0", "ALICE_SOAK_JSON": str(figures_path)}
        cmd = [sys.executable, "-m", "pytest", "-s", "-q", "-p", "no:cacheprovider",
               *[f"tests/reliability/test_{part}.py" for part in parts]]
        if keyword:
            cmd += ["-k", keyword]
        started = time.monotonic()
        outcome = subprocess.run(cmd, cwd=ROOT, env=env, check=False)
        figures = json.loads(figures_path.read_text()) if figures_path.exists() else {}
    return {
        "sizes": "long" if long else "short",
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "seconds": round(time.monotonic() - started, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average": [round(x, 2) for x in os.getloadavg()]},
        "pytest_exit_code": outcome.returncode,
        "passed": outcome.returncode == 0,
        "figures": figures,
    }


def print_summary(result: dict[str, Any]) -> None:
    print(f"\n### reliability ({result['sizes']}): {'passed' if result['passed'] else 'FAILED'} "
          f"in {result['seconds']} s on {result['machine']['cpus']} CPUs\n")
    for name, figures in result["figures"].items():
        print(f"- {name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--short", action="store_true", help="the CI sizes instead of the long ones")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression")
    args = parser.parse_args()
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s): {', '.join(unknown)}")
    result = run(parts, long=not args.short, keyword=args.keyword)
    print_summary(result)
    save_json(args.json, result)
    if args.json:
        print(f"\nfigures written to {args.json}")
    sys.exit(result["pytest_exit_code"])


if __name__ == "__main__":
    main()
