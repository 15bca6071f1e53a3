"""The agent runtime of an app: its speech engines (the scheduler and the models: gateway/engines.py), its
agent and its tools, loaded once, off the event loop, and shared by every session of the app.

Loading starts with the app and runs in the background, so the HTTP API and tone sessions are up at
once; an agent session waits for the load (bounded by the offer's own deadline), and /health shows its
progress and what it still waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging

from alice_voice.clock import Clock
from alice_voice.compute import InferenceScheduler, Priority
from alice_voice.config import Settings
from alice_voice.conversation.agents import Agent, load_agent
from alice_voice.conversation.session.actor import SessionActor
from alice_voice.conversation.session.ports import Conversation, Resources, SessionPort
from alice_voice.errors import ModelsUnavailable
from alice_voice.gateway.engines import SpeechEngines
from alice_voice.logs import SessionLogger
from alice_voice.metrics import Metrics
from alice_voice.speech.registry import SpeechModels
from alice_voice.tools import Toolbox
from alice_voice.tools.catalog import ToolCatalog, transfer_targets
from alice_voice.tools.config import load_tools_file

log = logging.getLogger("alice_voice.runtime")


class AgentRuntime:
    def __init__(self, settings: Settings, metrics: Metrics, clock: Clock, *, engines: SpeechEngines | None = None,
                 freeze_heap: bool = False) -> None:
        """`engines`: models already loaded (or loading) to share; by default the runtime makes and closes its
        own. `freeze_heap`: once the models are in, move the heap out of the collector's reach (a process's
        entry point asks for it: it is process-wide)."""
        self._settings, self._metrics, self._clock = settings, metrics, clock
        self._owns_engines = engines is None
        self.engines = engines if engines is not None else SpeechEngines(settings)
        self.compute: InferenceScheduler = self.engines.compute
        self.compute.add_observer(self._observe_job)
        self._freeze_heap = freeze_heap
        self._models: asyncio.Future[SpeechModels] | None = None
        self._agent: Agent | None = None
        self._resources: Resources | None = None
        # The tools file is read now, so a broken one stops the gateway at start with its reason.
        self._tools_file = load_tools_file(settings.tools_file) if settings.tools else None
        self._tools: asyncio.Task[ToolCatalog] | None = None

    def start_loading(self) -> None:
        if self._models is None:
            self._models = asyncio.wrap_future(self.engines.load())
            self._models.add_done_callback(self._loaded)
            if self._tools_file is not None:  # MCP servers start meanwhile, on the event loop
                catalog = ToolCatalog.from_file(self._tools_file, transfers=transfer_targets(self._settings))
                self._tools = asyncio.create_task(catalog, name="tools")

    def _loaded(self, models: asyncio.Future[SpeechModels]) -> None:
        if self._freeze_heap and not models.cancelled() and models.exception() is None:
            # The models' ~50k Python objects live as long as the process: out of the collector's reach, a
            # full collection no longer stalls every session's event loop (12-16 ms a pass measured).
            gc.collect()
            gc.freeze()

    async def resources(self, wait_s: float = 120.0) -> Resources:
        """The loaded models, agent and tools; waits for them at most `wait_s` (then 503
        `models_unavailable`, naming what is still starting)."""
        if self._resources is None:
            self.start_loading()
            assert self._models is not None
            try:
                async with asyncio.timeout(wait_s):
                    models = await asyncio.shield(self._models)
                    catalog = await asyncio.shield(self._tools) if self._tools is not None else None
            except TimeoutError:
                raise ModelsUnavailable(f"still starting: {self._waiting_for()}") from None
            except Exception as exc:
                raise ModelsUnavailable(f"the speech models failed to load: {exc}") from None
            if self._agent is None:
                self._agent = load_agent(self._settings)
                log.info("agent %s ready", self._agent.name)
            self._resources = Resources(self._settings, models, self._agent, self.compute, self._metrics,
                                        self._clock, catalog.toolbox if catalog is not None else Toolbox())
        return self._resources

    async def new_conversation(self, port: SessionPort, log: SessionLogger, wait_s: float) -> Conversation:
        return SessionActor(await self.resources(wait_s), port, log)

    def _waiting_for(self) -> str:
        """What an agent session would still wait for."""
        parts = []
        if self._models is None or not self._models.done():
            parts.append("the speech models")
        if self._tools is not None and not self._tools.done() and self._tools_file is not None:
            parts.append("the MCP servers " + ", ".join(repr(m.name) for m in self._tools_file.mcp))
        return " and ".join(parts) or "the speech models"

    def status(self) -> dict[str, str]:
        """`state`: what a caller would get now: `ready`, `loading` (an agent session would wait, and may be
        refused: `waiting_for` says for what), `failed: ...`, or `not loaded` (no preloading)."""
        models = self._models
        if models is None:
            return {"state": "not loaded"}
        if models.done() and (models.cancelled() or models.exception() is not None):
            return {"state": f"failed: {models.exception() if not models.cancelled() else 'cancelled'}"}
        tools = self._tools
        if not models.done() or (tools is not None and not tools.done()):
            return {"state": "loading", "waiting_for": self._waiting_for()}
        offered = str(len(tools.result().toolbox)) if tools is not None and not tools.cancelled() \
            and tools.exception() is None else "0"
        agent = self._agent.name if self._agent is not None else self._settings.agent
        return {"state": "ready", **models.result().status, "agent": agent, "tools": offered}

    def _observe_job(self, priority: Priority, waited_s: float, ran_s: float) -> None:
        label = priority.label
        self._metrics.scheduler_wait_ms.labels(priority=label).observe(waited_s * 1000)
        self._metrics.scheduler_run_ms.labels(priority=label).observe(ran_s * 1000)

    async def aclose(self) -> None:
        if self._freeze_heap:
            gc.unfreeze()
        self.compute.remove_observer(self._observe_job)
        if self._tools is not None:
            if not self._tools.done():
                self._tools.cancel()
            with contextlib.suppress(BaseException):
                await (await self._tools).aclose()
        if self._owns_engines:
            await asyncio.to_thread(self.engines.close)  # joins the workers: not on the event loop
