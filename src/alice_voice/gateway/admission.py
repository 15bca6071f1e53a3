"""Admission by measured headroom: take a caller only while the box can still answer everyone in time.

A reply's first audio (TTFA) waits for the end-of-turn silence, then for the turn's critical work: the
end-of-turn model, the final decode (often only grounding the last partial), the first sentence's
synthesis, and on a busy box for the foreground jobs queued ahead of them. So, with S that work's time
on an idle box (the means of the three, added up: the chain is counted as if it ran one job after the
other, which overstates a little when the final finishes during the end-of-turn wait) and rho the busy
share of the CPUs at normal priority (partial decodes run below it and give way):

    predicted TTFA  =  eot_silence_ms + S  +  S * rho / (1 - rho)

(the last term is the M/M/1 queueing delay: it stays small until rho nears 1, then grows without bound).
Counting S as one job's mean instead of the chain made a four-caller level look like 330 ms where its p95
was 612. S is learnt from the jobs' run times, which already include the contention of the moment (the cores are
shared, so a job runs slower rather than waits): a run of r ms on a box busy rho counts as r * (1 - rho),
or the busy box would be counted twice, once in the slower runs and again in the queueing term. Counted
twice, it refused a fourth caller on this 2-core box at a predicted 790 ms while four measured 380-480 ms.
With c the normal-priority CPU share one session has been measured to use, n sessions load the box with

    rho(n)  =  max(rho measured now + c per caller added since,  rho of everything else + c * n)

the second term so that callers admitted a moment ago count before their load shows. That is the mean
load; callers' turns also fall together (callers who dialled in together speak together), and then n
turns' critical work shares the cores (each turn's work is one job at a time: up to `cores` turns run
side by side, more share them), on cores that everything else of the n calls also keeps busy (their
packets, codecs, hearing, and whatever else the machine runs), which slows each job by 1 / (1 - rho(n)):

    worst TTFA(n)  =  eot_silence_ms + S * max(1, n / cores) / (1 - rho(n))

A caller is taken only while both fit (the second is never below the first, so it decides). Without
that second bound three callers dialling 0.3 s apart were admitted on the mean alone and 17 of their 48
turns went over a 500 ms budget (p95 893 ms); with it, but without the slowdown (S + (n - 1) * S /
cores), a quick hour took three again and 5 of their 48 turns went over (p95 589 ms): S is learnt as on
an idle box, and turns falling together do not run on one.

An offer is refused with 503 `at_capacity` and `Retry-After` when

- the sessions reach `max_sessions` (a hard ceiling);
- the first-audio p95 of recent turns is already past the budget (measured, not predicted), or would be
  with one caller more: the measured p95 plus the growth the model predicts from the added load (the
  model only says what one more caller adds; what the callers already get is measured, on today's box);
- the event loop's thread is busy more than `_LOOP_BUSY_LIMIT` of the time: one thread carries every
  session's packets, and it saturates on its own, before the CPUs do;
- the predicted TTFA with rho(n + 1) is past the budget.

With no budget (`LATENCY_BUDGET_MS=0`) only the ceiling applies. Only the ceiling applies to a process with
no session either: it has no caller to protect, and turning its first
caller away would turn a slow answer into none (a load balancer reading `/health` sends callers to the
replica with the most headroom first).

`headroom` (shown in /health and as `voice_headroom_sessions`) is how many more callers fit now.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from alice_voice.compute import Priority
from alice_voice.compute.load import CpuSample

_LOOP_BUSY_LIMIT = 0.8
_RECENT_TURNS_S = 30.0
_MIN_TURNS = 5
_CPU_SMOOTHING = 0.3  # EWMA weight of a new 1 s sample (~3 s horizon)
_JOB_SMOOTHING = 0.05
_PRIOR_SESSION_CPU = 0.06  # a speaking session's normal-priority share of 2 cores, from the load benchmark
# A turn's critical jobs, and their idle run times until measured (the load benchmark's, this box).
_PRIOR_CHAIN_MS = {Priority.END_OF_TURN: 60.0, Priority.FINAL: 60.0, Priority.FIRST_TTS: 20.0}


@dataclass(frozen=True, slots=True)
class Verdict:
    admit: bool
    reason: str  # "ok", "max_sessions", "latency_budget", "event_loop"
    headroom: int
    predicted_ttfa_ms: float


class Admission:
    def __init__(self, *, budget_ms: float, eot_silence_ms: float, max_sessions: int, cores: int) -> None:
        self.budget_ms = budget_ms
        self.eot_silence_ms = eot_silence_ms
        self.max_sessions = max_sessions
        self.cores = cores
        self.busy = 0.0
        self.others_busy = 0.0  # what the CPUs do for everything but this process
        self.session_cpu = _PRIOR_SESSION_CPU
        self.chain_ms = dict(_PRIOR_CHAIN_MS)  # each critical job's mean, as on an idle box
        self.job_ms = sum(self.chain_ms.values())  # S: the turn's critical work
        self.loop_busy = 0.0
        self._turns: deque[tuple[float, float]] = deque(maxlen=200)  # (monotonic time, first audio ms)
        # appended from scheduler threads, drained on the loop
        self._job_runs: deque[tuple[Priority, float]] = deque(maxlen=1000)

    # ---------- measurements ----------
    def observe_cpu(self, sample: CpuSample, sessions: int) -> None:
        own = sample.process_cores / self.cores
        self.busy += _CPU_SMOOTHING * (max(sample.machine_busy, own) - self.busy)
        self.others_busy += _CPU_SMOOTHING * (max(0.0, sample.machine_busy - own) - self.others_busy)
        self.loop_busy += _CPU_SMOOTHING * (sample.loop_busy - self.loop_busy)
        if sessions > 0:
            self.session_cpu += _CPU_SMOOTHING * (own / sessions - self.session_cpu)

    def observe_job(self, priority: Priority, waited_s: float, ran_s: float) -> None:
        """A scheduler observer (called in its threads): keeps the run times of a reply's critical jobs."""
        if priority in _PRIOR_CHAIN_MS:
            self._job_runs.append((priority, ran_s * 1000))  # deque.append is atomic; `settle` folds them in

    def settle(self) -> None:
        """Fold the job times observed since the last call into the mean (on the event loop), each as the
        time it would have taken on an idle box (see the module docstring)."""
        idle_share = 1.0 - min(self.busy, 0.95)  # (a run on a saturated box still says something of S)
        if not self._job_runs:
            return
        while self._job_runs:
            priority, ran_ms = self._job_runs.popleft()
            self.chain_ms[priority] += _JOB_SMOOTHING * (ran_ms * idle_share - self.chain_ms[priority])
        self.job_ms = sum(self.chain_ms.values())

    def observe_turn(self, first_audio_ms: float, at: float | None = None) -> None:
        self._turns.append((time.monotonic() if at is None else at, first_audio_ms))

    # ---------- the decision ----------
    def predicted_ttfa_ms(self, busy: float) -> float:
        if busy >= 1.0:
            return math.inf
        return self.eot_silence_ms + self.job_ms + self.job_ms * busy / (1.0 - busy)

    def recent_p95_ms(self, now: float | None = None) -> float | None:
        now = time.monotonic() if now is None else now
        recent = [ms for at, ms in self._turns if now - at <= _RECENT_TURNS_S]
        return float(np.percentile(recent, 95)) if len(recent) >= _MIN_TURNS else None

    def verdict(self, sessions: int, now: float | None = None) -> Verdict:
        measured = self.recent_p95_ms(now)
        predicted = self.predicted_ttfa_ms(self.busy_with(sessions, sessions + 1))
        fits = min(self.max_sessions - sessions, self._callers_within_budget(sessions),
                   self._callers_within_measured(sessions, measured))
        if sessions >= self.max_sessions:
            return Verdict(False, "max_sessions", 0, predicted)
        if sessions == 0 or not self.budget_ms:  # (no budget: admission by load is off)
            return Verdict(True, "ok", max(1, fits if self.budget_ms else self.max_sessions - sessions), predicted)
        if self.loop_busy > _LOOP_BUSY_LIMIT:
            return Verdict(False, "event_loop", 0, predicted)
        if fits < 1:
            return Verdict(False, "latency_budget", 0, predicted)
        return Verdict(True, "ok", fits, predicted)

    def over_budget(self, first_audio_ms: float) -> bool:
        """Whether a turn of an admitted caller missed the promise (`voice_budget_breaches_total`)."""
        return bool(self.budget_ms) and first_audio_ms > self.budget_ms

    @property
    def per_session(self) -> float:
        """A session's CPU share, never below the prior: sessions measured while their callers were silent
        would otherwise make room for callers who will not be."""
        return max(self.session_cpu, _PRIOR_SESSION_CPU)

    def busy_with(self, sessions: int, callers: int) -> float:
        """rho(callers), the load now being `sessions` sessions' (see the module docstring)."""
        per_session = self.per_session
        return max(self.busy + (callers - sessions) * per_session, self.others_busy + callers * per_session)

    def _callers_within_measured(self, sessions: int, measured_p95: float | None) -> int:
        """How many more callers keep the measured p95, plus the growth the model predicts from their load,
        inside the budget (unbounded with too few recent turns to say)."""
        if measured_p95 is None:
            return self.max_sessions
        now = self.predicted_ttfa_ms(self.busy_with(sessions, sessions))
        return self._more_callers_while(sessions, lambda callers: measured_p95 + self.predicted_ttfa_ms(
            self.busy_with(sessions, callers)) - now <= self.budget_ms)

    def worst_ttfa_ms(self, sessions: int, callers: int) -> float:
        """The TTFA of the last of `callers` whose turns' critical work falls together, the load now being
        `sessions` sessions'."""
        busy = self.busy_with(sessions, callers)
        if busy >= 1.0:
            return math.inf
        return self.eot_silence_ms + self.job_ms * max(1.0, callers / self.cores) / (1.0 - busy)

    def _callers_within_budget(self, sessions: int) -> int:
        """How many more callers keep the predicted TTFA, and the worst case of turns falling together,
        inside the budget."""
        # The worst case is never below the mean prediction (S * max(1, n / cores) / (1 - rho) >= S / (1 - rho)),
        # so it alone decides; it grows with every caller: count until it no longer fits (exactly on the
        # budget fits: the small epsilon absorbs the float error).
        return self._more_callers_while(
            sessions, lambda callers: self.worst_ttfa_ms(sessions, callers) <= self.budget_ms + 1e-9)

    def _more_callers_while(self, sessions: int, fits: Callable[[int], bool]) -> int:
        """How many callers beyond `sessions`, added one at a time, keep `fits(callers in all)` true (the
        predictions grow with every caller), up to `max_sessions`."""
        more = 0
        while more < self.max_sessions - sessions and fits(sessions + more + 1):
            more += 1
        return more
