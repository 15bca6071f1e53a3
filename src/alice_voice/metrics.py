"""The gateway's own Prometheus registry: the latency histograms of DESIGN.md section 5, and the load
signals the gateway admits callers by (scheduler queue waits, event-loop lag, headroom)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_MS_BUCKETS = (1, 2, 5, 10, 20, 40, 60, 80, 100, 150, 200, 250, 300, 400, 500, 600, 800, 1000, 1500, 2000,
               3000, 5000)
_FINE_MS_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 60, 100, 150, 250, 500, 1000, 2500)
_DETECTION_MS = (500, 1000, 1500, 2000, 3000, 4000, 6000, 8000, 12000, 20000, 30000)


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
                                        "Arrival of the turn's last speech sound to first reply audio frame sent (ms).",
                                        buckets=_MS_BUCKETS, registry=r)
        self.barge_in_ms = Histogram("voice_barge_in_ms",
                                     "First speech frame during playback to first frame without reply audio (ms).",
                                     buckets=_MS_BUCKETS, registry=r)
        self.end_of_turn_ms = Histogram("voice_end_of_turn_ms",
                                        "Arrival of the turn's last speech sound to the end of turn decided (ms).",
                                        buckets=_MS_BUCKETS, registry=r)
        self.scheduler_wait_ms = Histogram("voice_scheduler_wait_ms", "Time a model job waited in the inference "
                                           "scheduler's queue before a thread took it (ms).", ["priority"],
                                           buckets=_FINE_MS_BUCKETS, registry=r)
        self.scheduler_run_ms = Histogram("voice_scheduler_run_ms", "Time a model job ran (ms).", ["priority"],
                                          buckets=_FINE_MS_BUCKETS, registry=r)
        self.loop_lag_ms = Histogram("voice_event_loop_lag_ms", "How late the event loop ran a timer (ms).",
                                     buckets=_FINE_MS_BUCKETS, registry=r)
        self.audio_frames = Counter("voice_audio_frames", "Incoming 20 ms audio frames: received from the "
                                    "transport, lost on the way (sequence gaps), heard (reached the VAD).",
                                    ["stage"], registry=r)
        self.active_sessions = Gauge("voice_active_sessions", "Sessions open in this process.", registry=r)
        self.capacity = Gauge("voice_session_capacity", "Maximum sessions this process accepts.", registry=r)
        self.headroom_sessions = Gauge("voice_headroom_sessions", "More callers this process can admit within "
                                       "its latency budget, from measured load (0: it refuses offers).", registry=r)
        self.budget_breaches = Counter("voice_budget_breaches", "Turns whose first audio (less the silence "
                                       "the caller was given to go on) came later than LATENCY_BUDGET_MS.",
                                       registry=r)
        self.cpu_seconds = Counter("voice_cpu_seconds", "CPU time of this process by stage of a call "
                                   "(compute/cpu_stages.py).", ["stage"], registry=r)
        self.cpu_busy = Gauge("voice_cpu_busy_ratio", "Recent busy share of the CPUs this process runs on.",
                              registry=r)
        self.sessions_total = Counter("voice_sessions", "Sessions opened, by mode and transport (webrtc, "
                                      "websocket, twilio).", ["mode", "transport"], registry=r)
        self.sessions_ended = Counter("voice_sessions_ended", "Sessions ended, by reason.", ["reason"],
                                      registry=r)
        self.outbound_calls = Counter("voice_outbound_calls", "Outbound calls by their last status from Twilio "
                                      "(queued, ringing, in-progress, completed, busy, no-answer, failed, canceled).",
                                      ["status"], registry=r)
        self.answered_by = Counter("voice_answered_by", "Outbound calls by who answered (Twilio's answering-machine "
                                   "detection: human, machine_end_beep, ..., fax, unknown).", ["answered_by"],
                                   registry=r)
        self.machine_detection_ms = Histogram("voice_machine_detection_ms", "How long answering-machine detection "
                                              "took to decide, from the answer.", buckets=_DETECTION_MS, registry=r)
        self.offers_refused = Counter("voice_offers_refused", "Offers refused, by reason.", ["reason"], registry=r)
        self.turns_total = Counter("voice_turns", "Completed user turns.", registry=r)
        self.backchannels = Counter("voice_backchannels", "Acknowledgements over a reply, which went on.", registry=r)
        self.interruptions = Counter("voice_interruptions", "Replies cut by the caller talking over them.",
                                     registry=r)
        self.turn_repairs = Counter("voice_turn_repairs", "Turns taken as over at a pause, then continued: the "
                                    "reply begun to them was dropped.", registry=r)
        self.replies_resumed = Counter("voice_replies_resumed", "Paused replies that went on (after a "
                                       "backchannel, a cough, a click).", registry=r)
        self.tool_duration_ms = Histogram("voice_tool_duration_ms", "Tool calls' run time (ms), by tool and "
                                          "outcome (ok, error, invalid, unknown, timeout, cancelled).",
                                          ["tool", "outcome"], buckets=_MS_BUCKETS, registry=r)
        self.tool_errors = Counter("voice_tool_errors", "Tool calls that did not succeed, by tool and outcome.",
                                   ["tool", "outcome"], registry=r)
        self.errors_total = Counter("voice_errors", "Errors reported to clients, by code.", ["code"], registry=r)
        self.provider_failures = Counter("voice_provider_failures", "Provider failures, by provider and code.",
                                         ["provider", "code"], registry=r)
        self.store_up = Gauge("voice_store_up", "1 when the session store answers.", registry=r)
