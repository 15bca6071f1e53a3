"""Alice Voice: a self-hosted real-time voice-agent gateway."""

import os

__version__ = "0.1.0"

# One thread per native call: the inference scheduler owns the cores (compute/), so the math libraries
# must not start worker teams of their own. Their runtimes read these once, when they load, so they are
# set here, before anything of ours imports numpy (unless the operator set them). Measured on this box:
# numpy's OpenBLAS thread spun ~126 ms after each final decode's mel features (~0.15 cores a caller), and
# the VAD's ggml ran each 32 ms frame on an OpenMP team of 4 (4.7x its CPU, 2.6x its time).
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_THREAD_LIMIT"):
    os.environ.setdefault(_variable, "1")
