"""The speech engines of a runtime: the inference scheduler, sized by `COMPUTE_THREADS`, and the models that
run on it, loaded once, off the event loop (seconds: ONNX and CTranslate2 sessions, warmed).

The engines belong to whoever made them: a runtime makes its own by default and closes them with itself.
Several runtimes may share engines explicitly (tests build many apps on one set of loaded models), never
implicitly: there is no process-wide cache.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading

from alice_voice.compute import InferenceScheduler, available_cores, default_lanes
from alice_voice.config import Settings
from alice_voice.speech.registry import SpeechModels, load_all

log = logging.getLogger("alice_voice.runtime")


class SpeechEngines:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.compute = InferenceScheduler(default_lanes(settings.compute_threads or available_cores()))
        self._loaded: concurrent.futures.Future[SpeechModels] | None = None
        self._lock = threading.Lock()

    def load(self) -> concurrent.futures.Future[SpeechModels]:
        """Start loading (in a thread of its own), once; the future of the loaded models."""
        with self._lock:
            if self._loaded is None:
                self._loaded = concurrent.futures.Future()
                threading.Thread(target=self._load, args=(self._loaded,), name="load-models", daemon=True).start()
            return self._loaded

    @property
    def loading(self) -> bool:
        return self._loaded is None or not self._loaded.done()

    def close(self) -> None:
        """Stop the scheduler's workers (after their running jobs): before the interpreter ends, a worker
        dropping the last reference to a model during finalization (CTranslate2's destructor releases the
        GIL) aborts the process."""
        self.compute.close()

    def _load(self, future: concurrent.futures.Future[SpeechModels]) -> None:
        try:
            models = load_all(self.settings, self.compute)
        except BaseException as exc:  # reported to whoever waits for the models
            future.set_exception(exc)
            return
        log.info("models ready: %s", models.status)
        future.set_result(models)
