"""The process-wide agent runtime: the inference scheduler, and the models, agent and tools loaded once,
off the event loop, shared by every session.

Loading starts with the app and runs in the background, so the HTTP API and tone sessions are up at
once; an agent session waits for the load (bounded by the offer's own deadline), and /health shows its
progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from alice_voice.clock import Clock
from alice_voice.compute import InferenceScheduler, Priority, shared_scheduler
from alice_voice.config import Settings
from alice_voice.conversation.actor import SessionActor
from alice_voice.conversation.agents import Agent, load_agent
from alice_voice.conversation.session import Conversation, Resources, SessionPort
from alice_voice.errors import ModelsUnavailable
from alice_voice.logs import SessionLogger
from alice_voice.metrics import Metrics
from alice_voice.speech.registry import SpeechModels, load_all
from alice_voice.tools import Toolbox
from alice_voice.tools.catalog import ToolCatalog
from alice_voice.tools.config import load_tools_file

log = logging.getLogger("alice_voice.runtime")


@dataclass
class _Loaded:
    models: SpeechModels
    agent: Agent


class AgentRuntime:
    def __init__(self, settings: Settings, metrics: Metrics, clock: Clock) -> None:
        self._settings, self._metrics, self._clock = settings, metrics, clock
        self.compute: InferenceScheduler = shared_scheduler(settings.compute_threads or None)
        self.compute.add_observer(self._observe_job)
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="load-models")
        self._task: asyncio.Future[_Loaded] | None = None
        self._resources: Resources | None = None
        # The tools file is read now, so a broken one stops the gateway at start with its reason.
        self._tools_file = load_tools_file(settings.tools_file) if settings.tools else None
        self._tools: asyncio.Task[ToolCatalog] | None = None

    def start_loading(self) -> None:
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._task = asyncio.ensure_future(loop.run_in_executor(self._loader, self._load))
            if self._tools_file is not None:  # MCP servers start meanwhile, on the event loop
                self._tools = asyncio.create_task(ToolCatalog.from_file(self._tools_file), name="tools")

    def _load(self) -> _Loaded:
        loaded = _Loaded(models=load_all(self._settings), agent=load_agent(self._settings))
        # The models' ~50k Python objects live as long as the process: move them out of the collector's
        # reach, so that a full collection no longer stalls every session's event loop (12-16 ms a pass
        # measured, more as the heap grows).
        gc.collect()
        gc.freeze()
        log.info("models ready: %s, agent %s", loaded.models.status, loaded.agent.name)
        return loaded

    async def resources(self, wait_s: float = 120.0) -> Resources:
        """The loaded models; waits for them at most `wait_s` (503 `models_unavailable` after that)."""
        if self._resources is None:
            self.start_loading()
            assert self._task is not None
            try:
                async with asyncio.timeout(wait_s):
                    loaded = await asyncio.shield(self._task)
                    catalog = await asyncio.shield(self._tools) if self._tools is not None else None
            except TimeoutError:
                raise ModelsUnavailable(f"still starting: {self._waiting_for()}") from None
            except Exception as exc:
                raise ModelsUnavailable(f"the speech models failed to load: {exc}") from None
            self._resources = Resources(self._settings, loaded.models, loaded.agent, self.compute,
                                        self._metrics, self._clock,
                                        catalog.toolbox if catalog is not None else Toolbox())
        return self._resources

    async def new_conversation(self, port: SessionPort, log: SessionLogger, wait_s: float) -> Conversation:
        return SessionActor(await self.resources(wait_s), port, log)

    def _waiting_for(self) -> str:
        """What an agent session would still wait for."""
        parts = []
        if self._task is None or not self._task.done():
            parts.append("the speech models")
        if self._tools is not None and not self._tools.done() and self._tools_file is not None:
            parts.append("the MCP servers " + ", ".join(repr(m.name) for m in self._tools_file.mcp))
        return " and ".join(parts) or "the speech models"

    def status(self) -> dict[str, str]:
        """`state`: what a caller would get now: `ready`, `loading` (an agent session would wait, and may be
        refused: `waiting_for` says for what), `failed: ...`, or `not loaded` (no preloading)."""
        task = self._task
        if task is None:
            return {"state": "not loaded"}
        if task.done() and (task.cancelled() or task.exception() is not None):
            return {"state": f"failed: {task.exception() if not task.cancelled() else 'cancelled'}"}
        tools = self._tools
        if not task.done() or (tools is not None and not tools.done()):
            return {"state": "loading", "waiting_for": self._waiting_for()}
        offered = str(len(tools.result().toolbox)) if tools is not None and not tools.cancelled() \
            and tools.exception() is None else "0"
        return {"state": "ready", **task.result().models.status, "agent": task.result().agent.name, "tools": offered}

    def _observe_job(self, priority: Priority, waited_s: float, ran_s: float) -> None:
        label = priority.label
        self._metrics.scheduler_wait_ms.labels(priority=label).observe(waited_s * 1000)
        self._metrics.scheduler_run_ms.labels(priority=label).observe(ran_s * 1000)

    async def aclose(self) -> None:
        gc.unfreeze()  # what the load froze can go when the process (or a test's app) no longer needs it
        self.compute.remove_observer(self._observe_job)
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._tools is not None:
            if not self._tools.done():
                self._tools.cancel()
            with contextlib.suppress(BaseException):
                await (await self._tools).aclose()
        self._loader.shutdown(wait=False, cancel_futures=True)
