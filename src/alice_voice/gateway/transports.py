"""How this process builds the transport of a new session from what a route accepted: the peer for an
SDP offer, the media socket for an accepted WebSocket. The settings each needs are read here once."""

from __future__ import annotations

from starlette.websockets import WebSocket

from alice_voice.clock import Clock
from alice_voice.config import Settings
from alice_voice.metrics import Metrics
from alice_voice.transport.media_socket import Dialect, MediaSocket
from alice_voice.transport.peer import Peer, ice_servers
from alice_voice.transport.session_transport import TransportKind


class Transports:
    def __init__(self, settings: Settings, clock: Clock, metrics: Metrics) -> None:
        self._settings, self._clock, self._metrics = settings, clock, metrics
        credential = settings.ice_credential.get_secret_value() if settings.ice_credential else None
        self.ice_servers = ice_servers(settings.ice_servers, settings.ice_username, credential)

    def webrtc(self, offer_sdp: str) -> Peer:
        s = self._settings
        return Peer(offer_sdp, ice_servers=self.ice_servers, jitter_mode=s.jitter_buffer, clock=self._clock,
                    metrics=self._metrics, peer_timeout_s=s.peer_timeout_s, connect_timeout_s=s.ice_connect_timeout_s)

    def socket(self, ws: WebSocket, dialect: Dialect, kind: TransportKind) -> MediaSocket:
        return MediaSocket(ws, dialect, kind, clock=self._clock, metrics=self._metrics,
                           quiet_timeout_s=self._settings.peer_timeout_s)
