# Two commands for a newcomer: `make run` (the gateway, embedded models, no keys) and `make test`.
# Each installs what it needs and is quick when everything is already there.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
LOCK_HASH := $(shell cat requirements.lock pyproject.toml | sha1sum | cut -c1-10)
DEV_HASH := $(shell cat requirements.lock pyproject.toml requirements-dev.lock | sha1sum | cut -c1-10)
PY_STAMP := $(VENV)/.installed-$(LOCK_HASH)
DEV_STAMP := $(VENV)/.dev-installed-$(DEV_HASH)
RUN_APT := espeak-ng
TEST_APT := $(RUN_APT) redis-server sox prometheus nginx coturn docker-compose chromium baresip sip-tester
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint unit bench soak install install-run install-test runtime-check clean

run: install-run
	$(PY) -m alice_voice

test: install-test lint
	$(PY) -m pytest
	$(MAKE) --no-print-directory runtime-check

# The image's dependency set alone (requirements.lock, no test tools) serves a call, drains and exits.
RUNTIME_VENV := .venv-runtime
RUNTIME_STAMP := $(RUNTIME_VENV)/.installed-$(LOCK_HASH)
runtime-check: $(RUNTIME_STAMP)
	$(RUNTIME_VENV)/bin/pip install -q --no-deps --force-reinstall .  # today's source, not the stamp's
	$(RUNTIME_VENV)/bin/python scripts/runtime_smoke.py

$(RUNTIME_STAMP): requirements.lock pyproject.toml
	rm -rf $(RUNTIME_VENV) && (python3.11 -m venv $(RUNTIME_VENV) || python3 -m venv $(RUNTIME_VENV))
	$(RUNTIME_VENV)/bin/pip install -q -r requirements.lock
	$(RUNTIME_VENV)/bin/pip install -q --no-deps pipecat-ai==1.14.0 .
	touch $@

lint: install-test
	$(PY) -m ruff check src tests bench training
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

unit: install-test
	$(PY) -m pytest tests/unit

bench: install-test
	# moonshine-voice is used only for the read-speech recordings it ships (bench/eot_sweep.py); not its code.
	$(PY) -m pip install -q --no-deps moonshine-voice==0.0.55
	$(PY) -m bench all --json bench/out/results.json --plot bench/out/results.png

soak: install-test
	$(PY) -m bench.soak --json bench/out/soak.json

install-run: $(PY_STAMP)
	@scripts/apt-ensure.sh $(RUN_APT)

install-test: $(DEV_STAMP)
	@scripts/apt-ensure.sh $(TEST_APT)

$(PY_STAMP): requirements.lock pyproject.toml
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	# pipecat-ai is used only for the smart-turn ONNX file it ships; its own dependencies are not needed.
	$(PY) -m pip install -q --no-deps pipecat-ai==1.14.0
	$(PY) -m pip install -q --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

# The runtime lock (requirements.lock: what the image carries) and the test tools on top of it.
$(DEV_STAMP): $(PY_STAMP) requirements-dev.lock
	$(PY) -m pip install -q -r requirements.lock -r requirements-dev.lock
	rm -f $(VENV)/.dev-installed-* && touch $@

clean:
	rm -rf $(VENV) $(RUNTIME_VENV) .cache test-artifacts bench/out .pytest_cache .mypy_cache .ruff_cache
