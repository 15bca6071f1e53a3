"""`/health`: what a caller would get from this process now, for a load balancer, a readiness probe or
an operator: 503 `starting` while the models or tools load, 503 `draining` during a drain, `degraded` when
the store is unreachable, and the load admission sees."""

from __future__ import annotations

from alice_voice.api.schemas import HealthResponse, LoadView
from alice_voice.gateway import AgentRuntime, Drain, Gateway, Housekeeping


async def health_view(gateway: Gateway, drain: Drain, housekeeping: Housekeeping,
                      runtime: AgentRuntime) -> HealthResponse:
    store_up = await housekeeping.check_store()
    admission = gateway.admission
    verdict = admission.verdict(len(gateway.sessions))
    recent_p95 = admission.recent_p95_ms()
    models = runtime.status()
    accepting = gateway.refusal is None
    status = ("draining" if drain.draining else "starting" if models.get("state") == "loading"
              else "ok" if store_up and accepting else "degraded")
    load = LoadView(admitting=verdict.admit, reason=verdict.reason, headroom=verdict.headroom,  # type: ignore[arg-type]
                    predicted_first_audio_ms=round(min(verdict.predicted_ttfa_ms, 1e6), 1),
                    budget_ms=gateway.settings.latency_budget_ms, cpu_busy=round(admission.busy, 3),
                    cpu_per_session=round(admission.session_cpu, 3), critical_job_ms=round(admission.job_ms, 1),
                    recent_first_audio_p95_ms=None if recent_p95 is None else round(recent_p95, 1),
                    cpu_others=round(admission.others_busy, 3), event_loop_busy=round(admission.loop_busy, 3),
                    event_loop_lag_p99_ms=round(housekeeping.loop_lag.p99_ms(), 2))
    return HealthResponse(status=status, process=gateway.owner, accepting=accepting,  # type: ignore[arg-type]
                          store={"kind": gateway.store.kind, "up": store_up},
                          sessions={"active": len(gateway.sessions), "capacity": gateway.settings.max_sessions},
                          load=load, models=models)
