"""The gateway's own Prometheus registry and the latency histograms of DESIGN.md section 5."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_MS_BUCKETS = (1, 2, 5, 10, 20, 40, 60, 80, 100, 150, 200, 250, 300, 400, 500, 600, 800, 1000, 1500, 2000,
               3000, 5000)


class Metrics:
    """One instance per app; tests build their own so nothing leaks between them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.offer_ms = Histogram("voice_webrtc_offer_ms", "Offer received to answer returned (ms).",
                                  buckets=_MS_BUCKETS, registry=r)
        self.ice_connect_ms = Histogram("voice_ice_connect_ms", "Answer returned to ICE connected (ms).",
                                        buckets=_MS_BUCKETS, registry=r)
        self.first_partial_ms = Histogram("voice_first_partial_ms",
                                          "First speech frame's arrival to first non-empty partial sent (ms).",
                                          buckets=_MS_BUCKETS, registry=r)
        self.first_audio_ms = Histogram("voice_first_audio_ms",
                                        "Last speech frame's arrival to first reply audio frame sent (ms).",
                                        buckets=_MS_BUCKETS, registry=r)
        self.barge_in_ms = Histogram("voice_barge_in_ms",
                                     "First speech frame during playback to first frame without reply audio (ms).",
                                     buckets=_MS_BUCKETS, registry=r)
        self.active_sessions = Gauge("voice_active_sessions", "Sessions open in this process.", registry=r)
        self.capacity = Gauge("voice_session_capacity", "Maximum sessions this process accepts.", registry=r)
        self.sessions_total = Counter("voice_sessions", "Sessions opened, by mode.", ["mode"], registry=r)
        self.sessions_ended = Counter("voice_sessions_ended", "Sessions ended, by reason.", ["reason"],
                                      registry=r)
        self.turns_total = Counter("voice_turns", "Completed user turns.", registry=r)
        self.errors_total = Counter("voice_errors", "Errors reported to clients, by code.", ["code"], registry=r)
        self.provider_failures = Counter("voice_provider_failures", "Provider failures, by provider and code.",
                                         ["provider", "code"], registry=r)
        self.store_up = Gauge("voice_store_up", "1 when the session store answers.", registry=r)
