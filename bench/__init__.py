"""Benchmarks: numbers to stdout, JSON and plots; never asserted in tests.

They share the tests' support package (the reference client, the gateway runners, the synthesized
speech), which lives under tests/.
"""

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent.parent / "tests")
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
