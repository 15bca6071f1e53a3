"""Control of a session from any process: who may (a session's own token, or the admin key), and where it
runs (here, or on its owner, over the control bus: state/control.py).

An unknown session is 404 (looked up first), a missing token 401, a wrong or another session's token 403.
`stop_tts` and `delete` reach the owner wherever it is; a session whose owner is gone has only its record
left to remove.
"""

from __future__ import annotations

import secrets
from typing import Any

from alice_voice.errors import Forbidden, OwnerGone, SessionNotFound, Unauthorized
from alice_voice.gateway.sessions import Gateway
from alice_voice.state.control import ControlAction, ControlChannel
from alice_voice.state.store import SessionRecord, token_matches


class SessionControl:
    def __init__(self, gateway: Gateway, bus: ControlChannel) -> None:
        self._gateway = gateway
        self.bus = bus

    async def start(self) -> None:
        await self.bus.start(self._gateway.owner, self._on_request)

    async def aclose(self) -> None:
        await self.bus.aclose()

    def require_admin(self, token: str | None) -> None:
        if not token:
            raise Unauthorized("missing bearer token")
        if not self._is_admin(token):
            raise Forbidden("the admin key is needed")

    async def authorize(self, session_id: str, token: str | None) -> SessionRecord:
        """404 for an unknown session (looked up first), 401 without a token, 403 with a wrong one."""
        gateway = self._gateway
        live = gateway.sessions.get(session_id)
        record = live.record if live else await gateway.store.get(session_id)
        if record is None:
            raise SessionNotFound(f"no session {session_id!r}")
        if not token:
            raise Unauthorized("missing bearer token")
        if self._is_admin(token):
            return record
        if not token_matches(token, record.token_hash):
            raise Forbidden("the token does not open this session")
        return record

    async def stop_tts(self, session_id: str) -> bool:
        """Stop the session's speech wherever its owner is; True if something was playing."""
        live = self._gateway.sessions.get(session_id)
        if live is not None:
            return await live.conversation.stop_tts()
        reply = await self._ask_owner("stop_tts", session_id)
        return bool(reply.get("stopped"))

    async def delete(self, session_id: str) -> None:
        """End the session here or on its owner; if the owner is gone, only its record is left to remove."""
        if await self._gateway.end(session_id, "deleted"):
            return
        try:
            await self._ask_owner("end", session_id)
        except OwnerGone:
            await self._gateway.store.delete(session_id)

    def _is_admin(self, token: str) -> bool:
        admin = self._gateway.settings.admin_key
        return admin is not None and secrets.compare_digest(token.encode(), admin.get_secret_value().encode())

    async def _ask_owner(self, action: ControlAction, session_id: str) -> dict[str, Any]:
        record = await self._gateway.store.get(session_id)
        if record is None:
            raise SessionNotFound(f"no session {session_id!r}")
        return await self.bus.request(record.owner, action, session_id, self._gateway.settings.control_timeout_s)

    async def _on_request(self, action: str, session_id: str) -> dict[str, Any]:
        """A control request from another process for a session this one owns."""
        live = self._gateway.sessions.get(session_id)
        if live is None:
            raise SessionNotFound(f"session {session_id!r} is not here")
        if action == "stop_tts":
            return {"stopped": await live.conversation.stop_tts()}
        return {"ended": await self._gateway.end(session_id, "deleted")}
