"""The process-wide agent runtime: models and agent loaded once, off the event loop, shared by sessions.

Loading starts with the app and runs in the background, so the HTTP API and tone sessions are up at
once; an agent session waits for the load (bounded), and /health shows its progress.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from alice_voice.clock import Clock
from alice_voice.config import Settings
from alice_voice.conversation.agent import Agent, load_agent
from alice_voice.conversation.events import ServerEvent
from alice_voice.conversation.pipeline import Resources, VoicePipeline
from alice_voice.conversation.session import Conversation
from alice_voice.errors import ModelsUnavailable
from alice_voice.logs import SessionLogger
from alice_voice.metrics import Metrics
from alice_voice.speech.registry import SpeechModels, load_all

log = logging.getLogger("alice_voice.runtime")
_LOAD_WAIT_S = 120.0


@dataclass
class _Loaded:
    models: SpeechModels
    agent: Agent


class AgentRuntime:
    def __init__(self, settings: Settings, metrics: Metrics, clock: Clock) -> None:
        self._settings, self._metrics, self._clock = settings, metrics, clock
        self._eot_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="end-of-turn")
        self._task: asyncio.Task[_Loaded] | None = None
        self._resources: Resources | None = None

    def start_loading(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(asyncio.to_thread(self._load), name="load-models")

    def _load(self) -> _Loaded:
        loaded = _Loaded(models=load_all(self._settings), agent=load_agent(self._settings))
        log.info("models ready: %s, agent %s", loaded.models.status, loaded.agent.name)
        return loaded

    async def resources(self) -> Resources:
        if self._resources is None:
            self.start_loading()
            assert self._task is not None
            try:
                async with asyncio.timeout(_LOAD_WAIT_S):
                    loaded = await asyncio.shield(self._task)
            except TimeoutError:
                raise ModelsUnavailable("the speech models are still loading") from None
            except Exception as exc:
                raise ModelsUnavailable(f"the speech models failed to load: {exc}") from None
            self._resources = Resources(self._settings, loaded.models, loaded.agent, self._eot_executor,
                                        self._metrics, self._clock)
        return self._resources

    async def new_conversation(self, session_id: str, emit: Callable[[ServerEvent], None],
                               set_state: Callable[[str], None],
                               turn_done: Callable[[dict[str, float]], None], log: SessionLogger) -> Conversation:
        return VoicePipeline(await self.resources(), emit, set_state, turn_done, log)

    def status(self) -> dict[str, str]:
        task = self._task
        if task is None:
            return {"state": "not loaded"}
        if not task.done():
            return {"state": "loading"}
        if task.cancelled() or task.exception() is not None:
            return {"state": f"failed: {task.exception() if not task.cancelled() else 'cancelled'}"}
        return {"state": "ready", **task.result().models.status, "agent": task.result().agent.name}

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._eot_executor.shutdown(wait=False, cancel_futures=True)
