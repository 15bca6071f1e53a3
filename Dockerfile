# syntax=docker/dockerfile:1
# hadolint global ignore=DL3008,DL3059
# (DL3008: pinned Debian versions break at each security update; DL3059: the lock and pipecat get
# separate layers on purpose, so a pipecat change does not reinstall the lock.)
# Alice Voice gateway image: every model ships inside a pip package, so the image is complete at build
# time and the container never downloads anything. deploy/README.md explains how to run it.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtualenv with the locked dependencies, the smart-turn ONNX file and the gateway ---
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, so a source change does not reinstall ~500 MB of wheels. requirements.lock is the
# runtime set only; the test tools (requirements-dev.lock) never enter the image.
COPY requirements.lock ./
RUN pip install -r requirements.lock
# Only pipecat's bundled smart-turn ONNX file is used. Its own pins (protobuf<7, soxr~=1.0) clash with
# the lock, and numba, aiohttp and openai would only add weight.
RUN pip install --no-deps pipecat-ai==1.14.0
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-deps .

# --- runtime: the virtualenv, espeak-ng for the espeak TTS option, an unprivileged user ---
FROM ${PYTHON_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 alice \
 && useradd --system --uid 10001 --gid alice --create-home --home-dir /home/alice --shell /usr/sbin/nologin alice
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    ALICE_HOST=0.0.0.0 \
    ALICE_PORT=8080 \
    ALICE_LOG_JSON=true
USER 10001:10001
WORKDIR /home/alice
# Proof that the image is self-contained: every embedded model loads with no network at all. (It also joins
# Whisper base's two halves into ~/.cache/alice-voice once, so a read-only root filesystem finds them joined.)
RUN --network=none python -c "from alice_voice.config import Settings; from alice_voice.speech.registry import load_all; \
from alice_voice.compute import InferenceScheduler, default_lanes; compute = InferenceScheduler(default_lanes(1)); \
print([load_all(Settings(asr=asr, tts=tts, twilio_allow_unsigned=True), compute).status for asr, tts in [('whisper', 'hibari'), ('sphinx', 'piper'), ('whisper', 'espeak')]]); \
compute.close()"
EXPOSE 8080
# urllib rather than curl: the slim image has no curl, and the check must not add packages.
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
  CMD ["python", "-c", "import json, os, sys, urllib.request; url = 'http://127.0.0.1:%s/health' % os.environ.get('ALICE_PORT', '8080'); body = json.load(urllib.request.urlopen(url, timeout=4)); sys.exit(0 if body.get('status') == 'ok' else 1)"]
CMD ["python", "-m", "alice_voice"]
