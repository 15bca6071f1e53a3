"""Admission by measured headroom: the predicted first-audio time, the refusal reasons and the headroom,
fed with hand-made measurements (no clock: every turn's time is given)."""

from __future__ import annotations

import itertools
import math
import threading

import numpy as np
import pytest

from alice_voice.compute import Priority
from alice_voice.compute.load import CpuSample
from alice_voice.gateway.admission import Admission

BUDGET_MS, EOT_MS = 600.0, 300.0
NOW = 10_000.0


def admission(max_sessions: int = 100, cores: int = 2, **measured: float) -> Admission:
    made = Admission(budget_ms=BUDGET_MS, eot_silence_ms=EOT_MS, max_sessions=max_sessions, cores=cores)
    for name, value in measured.items():
        assert hasattr(made, name)
        setattr(made, name, value)
    return made


# ---------- the prediction ----------
def test_predicted_ttfa_is_silence_plus_a_job_plus_the_queueing_delay() -> None:
    a = admission(job_ms=80.0)
    assert a.predicted_ttfa_ms(0.0) == pytest.approx(EOT_MS + 80)
    assert a.predicted_ttfa_ms(0.5) == pytest.approx(EOT_MS + 80 + 80 * 0.5 / 0.5)
    assert a.predicted_ttfa_ms(0.9) == pytest.approx(EOT_MS + 80 + 80 * 9)
    assert a.predicted_ttfa_ms(1.0) == math.inf
    assert a.predicted_ttfa_ms(1.2) == math.inf
    busy = np.linspace(0, 0.99, 50)
    assert np.all(np.diff([a.predicted_ttfa_ms(b) for b in busy]) > 0)


# ---------- admitting, and how many more fit ----------
def test_an_idle_box_admits_with_headroom() -> None:
    a = admission()
    verdict = a.verdict(sessions=0, now=NOW)
    assert verdict.admit and verdict.reason == "ok"
    assert verdict.headroom > 0
    # The prior: a turn's critical work 60 + 60 + 20 = 140 ms, 6 % of the CPUs a session; the budget allows
    # busy up to x/(1+x) with x = (600-300-140)/140.
    slack = (600 - 300 - 140) / 140
    assert a.job_ms == 140
    by_mean_load = math.floor(slack / (1 + slack) / 0.06)
    together = max(n for n in range(1, 50) if a.worst_ttfa_ms(0, n) <= BUDGET_MS)  # three turns at once fit
    assert (by_mean_load, together) == (8, 3)
    assert verdict.headroom == min(by_mean_load, together)
    assert verdict.predicted_ttfa_ms == pytest.approx(a.predicted_ttfa_ms(0.06))


def test_headroom_shrinks_as_busy_grows_and_reaches_0_where_the_prediction_crosses_the_budget() -> None:
    # the budget allows busy up to 0.75: (600-300-75)/75 = 3 (many cores: turns falling together never bind)
    a = admission(session_cpu=0.07, job_ms=75.0, cores=64)
    headrooms, grid = [], []
    # Steps of 0.0025 offset by 0.000123: no step lands within float rounding of a boundary 0.75 - 0.07 n
    # (that exact case is the next test's).
    for busy in np.arange(397) * 0.0025 + 0.000123:
        a.busy = float(busy)
        a.others_busy = a.busy - 3 * a.session_cpu  # the 3 sessions' load shows already: the measured term binds
        grid.append(a.busy)
        verdict = a.verdict(sessions=3, now=NOW)
        headrooms.append(verdict.headroom)
        n = verdict.headroom
        # n more callers fit inside the budget, n + 1 would not.
        if n > 0:
            assert a.predicted_ttfa_ms(busy + n * a.session_cpu) <= BUDGET_MS
        assert a.predicted_ttfa_ms(busy + (n + 1) * a.session_cpu) > BUDGET_MS
        # Admitted exactly while one more caller keeps the prediction inside the budget.
        assert verdict.admit == (a.predicted_ttfa_ms(busy + a.session_cpu) <= BUDGET_MS) == (n > 0)
        assert verdict.reason == ("ok" if verdict.admit else "latency_budget")
        assert verdict.predicted_ttfa_ms == pytest.approx(a.predicted_ttfa_ms(busy + a.session_cpu))
    assert headrooms[0] == 10 and headrooms[-1] == 0
    first_full = grid[headrooms.index(0)]
    assert first_full > 0.75 - 0.07 >= grid[headrooms.index(0) - 1]  # one caller more would pass 0.75
    assert all(later <= earlier for earlier, later in itertools.pairwise(headrooms))


def test_the_boundary_where_the_prediction_equals_the_budget() -> None:
    """Numbers exact in binary: the budget allows busy up to 0.5 (400 = 200 + 100 + 100 * 0.5 / 0.5)."""
    a = Admission(budget_ms=400, eot_silence_ms=200, max_sessions=100, cores=4)
    a.job_ms, a.session_cpu = 100.0, 0.25
    a.busy, a.others_busy = 0.0, -0.25  # (the session's load is in `busy`: the measured term binds)
    assert a.verdict(1, now=NOW).headroom == 2
    a.busy, a.others_busy = 0.25, 0.0  # one more caller lands exactly on the budget: still admitted
    assert a.predicted_ttfa_ms(a.busy + a.session_cpu) == 400
    verdict = a.verdict(1, now=NOW)
    assert (verdict.admit, verdict.reason, verdict.headroom, verdict.predicted_ttfa_ms) == (True, "ok", 1, 400)
    a.busy = 0.25 + 1e-9  # just past it: refused
    assert a.predicted_ttfa_ms(a.busy + a.session_cpu) > 400
    verdict = a.verdict(1, now=NOW)
    assert (verdict.admit, verdict.reason, verdict.headroom) == (False, "latency_budget", 0)


def test_callers_admitted_a_moment_ago_count_before_their_load_shows() -> None:
    """Four callers arrive at once on an idle box: their CPU use is not measured yet, the model counts it."""
    a = admission(session_cpu=0.2, job_ms=60.0, cores=64)  # the budget allows busy up to 0.8: four sessions
    a.busy = a.others_busy = 0.0
    admitted = 0
    while a.verdict(admitted, now=NOW).admit:
        admitted += 1
    assert admitted == 4, "the fifth would take rho to 1.0 by the per-session cost, idle as the box still looks"
    assert a.predicted_ttfa_ms(a.busy_with(4, 5)) > BUDGET_MS >= a.predicted_ttfa_ms(a.busy_with(3, 4))


def test_no_headroom_when_the_silence_and_one_job_already_fill_the_budget() -> None:
    a = admission(job_ms=BUDGET_MS - EOT_MS)
    verdict = a.verdict(1, now=NOW)
    assert (verdict.admit, verdict.reason, verdict.headroom) == (False, "latency_budget", 0)


def test_the_first_caller_is_taken_even_when_the_prediction_or_the_loop_says_no() -> None:
    """With no session there is no caller to protect: a slow answer beats none."""
    a = admission(busy=0.95, loop_busy=0.95)
    assert a.predicted_ttfa_ms(a.busy + a.session_cpu) == math.inf
    first = a.verdict(sessions=0, now=NOW)
    assert (first.admit, first.reason, first.headroom) == (True, "ok", 1)
    second = a.verdict(sessions=1, now=NOW)
    assert (second.admit, second.reason, second.headroom) == (False, "event_loop", 0)
    a.loop_busy = 0.0
    second = a.verdict(sessions=1, now=NOW)
    assert (second.admit, second.reason, second.headroom) == (False, "latency_budget", 0)
    # The ceiling still holds.
    assert admission(max_sessions=0).verdict(sessions=0, now=NOW).reason == "max_sessions"


def test_the_session_ceiling_refuses_and_caps_the_headroom() -> None:
    a = admission(max_sessions=3)
    assert a.verdict(sessions=2, now=NOW).headroom == 1  # the CPU would allow 13 more
    for sessions in (3, 4):
        verdict = a.verdict(sessions=sessions, now=NOW)
        assert (verdict.admit, verdict.reason, verdict.headroom) == (False, "max_sessions", 0)


def test_a_busy_event_loop_refuses() -> None:
    a = admission()
    saturated = CpuSample(machine_busy=0.0, process_cores=0.0, loop_busy=1.0)
    admitted = []
    for _ in range(8):  # the loop's share is smoothed: 0.3, 0.51, 0.66, 0.76, 0.83, ...
        a.observe_cpu(saturated, sessions=1)
        admitted.append(a.verdict(sessions=1, now=NOW).admit)
    assert admitted == [True] * 4 + [False] * 4
    verdict = a.verdict(sessions=1, now=NOW)
    assert (verdict.reason, verdict.headroom) == ("event_loop", 0)
    a.loop_busy = 0.8  # the limit itself is still admitted
    assert a.verdict(sessions=1, now=NOW).admit


# ---------- measured first-audio times ----------
def test_a_burst_of_slow_recent_turns_refuses_until_it_ages_out() -> None:
    a = admission()
    for i in range(4):
        a.observe_turn(900.0, at=NOW - 20 + i)
    assert a.recent_p95_ms(now=NOW) is None  # fewer than 5 turns say nothing
    assert a.verdict(sessions=1, now=NOW).admit
    a.observe_turn(900.0, at=NOW - 10)
    assert a.recent_p95_ms(now=NOW) == pytest.approx(900.0)
    verdict = a.verdict(sessions=1, now=NOW)
    assert (verdict.admit, verdict.reason, verdict.headroom) == (False, "latency_budget", 0)
    assert verdict.predicted_ttfa_ms < BUDGET_MS  # refused on what was measured, not on the prediction
    # 30 s after the first of them it still counts; past that, only four are left, then none.
    assert not a.verdict(sessions=1, now=NOW + 10).admit
    assert a.verdict(sessions=1, now=NOW + 10.5).admit
    assert a.recent_p95_ms(now=NOW + 21) is None


def test_recent_turns_inside_the_budget_admit() -> None:
    a = admission()
    for i in range(10):
        a.observe_turn(550.0, at=NOW - i)
    assert a.recent_p95_ms(now=NOW) == pytest.approx(550.0)
    assert a.verdict(sessions=1, now=NOW).admit


def test_one_slow_turn_among_many_fast_ones_is_below_the_p95() -> None:
    a = admission()
    for i in range(30):
        a.observe_turn(400.0, at=NOW - i / 2)
    a.observe_turn(2000.0, at=NOW)
    p95 = a.recent_p95_ms(now=NOW)
    assert p95 is not None and p95 < BUDGET_MS
    assert a.verdict(sessions=1, now=NOW).admit
    for _ in range(2):
        a.observe_turn(2000.0, at=NOW)
    assert a.verdict(sessions=1, now=NOW).reason == "latency_budget"  # 3 of 33: past the 95th percentile


# ---------- learning from measurements ----------
def test_busy_is_the_busier_of_the_machine_and_this_process() -> None:
    a = admission(cores=4)
    a.observe_cpu(CpuSample(machine_busy=0.1, process_cores=2.0, loop_busy=0.0), sessions=0)
    assert a.busy == pytest.approx(0.3 * 0.5)  # this process: 2 of 4 cores
    a.observe_cpu(CpuSample(machine_busy=0.9, process_cores=0.4, loop_busy=0.0), sessions=0)
    assert a.busy == pytest.approx(0.15 + 0.3 * (0.9 - 0.15))  # other programs on the box


def test_per_session_cpu_is_learnt_only_while_there_are_sessions() -> None:
    a = admission(cores=2, job_ms=40.0)  # (short turns: the mean load binds, not turns falling together)
    prior = a.session_cpu
    idle_but_busy = CpuSample(machine_busy=0.2, process_cores=0.6, loop_busy=0.1)
    for _ in range(5):
        a.observe_cpu(idle_but_busy, sessions=0)
    assert a.session_cpu == prior
    assert a.busy > 0
    a.observe_cpu(CpuSample(machine_busy=0.2, process_cores=0.8, loop_busy=0.1), sessions=4)
    assert a.session_cpu == pytest.approx(prior + 0.3 * (0.8 / 2 / 4 - prior))  # 0.1 of the CPUs each
    before = a.verdict(sessions=4, now=NOW).headroom
    for _ in range(20):
        a.observe_cpu(CpuSample(machine_busy=0.2, process_cores=0.8, loop_busy=0.1), sessions=4)
    assert a.session_cpu == pytest.approx(0.1, abs=1e-3)
    assert a.verdict(sessions=4, now=NOW).headroom < before  # heavier sessions: fewer fit


def test_critical_job_times_observed_from_other_threads_are_folded_in_by_settle() -> None:
    a = admission()
    prior = dict(a.chain_ms)

    def scheduler_thread() -> None:
        for priority in Priority:
            a.observe_job(priority, 0.5, 0.160)  # 160 ms each

    threads = [threading.Thread(target=scheduler_thread) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5.0)
        assert not thread.is_alive()
    assert a.chain_ms == prior  # nothing moves until the loop settles
    a.settle()
    # Only the reply's critical path counts: end of turn, final, first TTS (4 runs of each), and S is their sum.
    expected = {p: 160 - (160 - ms) * (1 - 0.05) ** 4 for p, ms in prior.items()}
    assert a.chain_ms == pytest.approx(expected)
    assert a.job_ms == pytest.approx(sum(expected.values()))
    a.settle()
    assert a.job_ms == pytest.approx(sum(expected.values()))


@pytest.mark.parametrize("priority", [Priority.HEARING, Priority.TTS, Priority.FIRST_PARTIAL, Priority.PARTIAL])
def test_non_critical_jobs_do_not_move_the_job_time(priority: Priority) -> None:
    a = admission()
    prior = a.job_ms
    a.observe_job(priority, 0.0, 5.0)
    a.settle()
    assert a.job_ms == prior


@pytest.mark.parametrize("priority", [Priority.END_OF_TURN, Priority.FINAL, Priority.FIRST_TTS])
def test_slower_critical_jobs_shrink_the_headroom(priority: Priority) -> None:
    a = admission()
    before = a.verdict(sessions=1, now=NOW)
    for _ in range(40):
        a.observe_job(priority, 0.0, 0.120)
    a.settle()
    after = a.verdict(sessions=1, now=NOW)
    assert a.job_ms > 100
    assert after.headroom < before.headroom
    assert after.predicted_ttfa_ms > before.predicted_ttfa_ms


def test_a_run_on_a_busy_box_counts_as_the_shorter_job_it_would_be_on_an_idle_one() -> None:
    """The run times already carry the contention: counted again in the queueing term, a busy box would
    refuse callers who fit (processor sharing: S of CPU takes S / (1 - rho))."""
    idle, busy = admission(busy=0.0), admission(busy=0.6)
    for a in (idle, busy):
        for _ in range(200):
            a.observe_job(Priority.END_OF_TURN, 0.0, 0.100)
        a.settle()
    others = idle.job_ms - idle.chain_ms[Priority.END_OF_TURN]  # (the final's and the first sentence's priors)
    assert idle.chain_ms[Priority.END_OF_TURN] == pytest.approx(100, abs=0.1)
    assert busy.chain_ms[Priority.END_OF_TURN] == pytest.approx(40, abs=0.1)
    assert busy.job_ms == pytest.approx(40 + others, abs=0.1)
    assert busy.verdict(sessions=3, now=NOW).predicted_ttfa_ms < idle.predicted_ttfa_ms(0.6 + idle.per_session)


def test_without_a_budget_only_the_ceiling_refuses_even_on_a_saturated_box() -> None:
    a = Admission(budget_ms=0, eot_silence_ms=EOT_MS, max_sessions=4, cores=2)
    a.busy = a.others_busy = 0.999  # another job has the CPUs
    assert [(v.admit, v.reason) for v in (a.verdict(n) for n in (1, 3, 4))] == [
        (True, "ok"), (True, "ok"), (False, "max_sessions")]


# ---------- closing the loop on what the callers get ----------
def test_one_more_caller_is_refused_when_the_measured_p95_plus_its_predicted_growth_crosses_the_budget() -> None:
    a = admission(session_cpu=0.1, job_ms=80.0, busy=0.2, others_busy=0.0)
    grows_by = a.predicted_ttfa_ms(a.busy_with(2, 3)) - a.predicted_ttfa_ms(a.busy_with(2, 2))
    assert a.predicted_ttfa_ms(a.busy_with(2, 3)) < BUDGET_MS  # the model alone would admit
    for i in range(10):
        a.observe_turn(BUDGET_MS - grows_by + 1.0, at=NOW - i)  # inside the budget now, not with one more
    verdict = a.verdict(sessions=2, now=NOW)
    assert (verdict.admit, verdict.reason, verdict.headroom) == (False, "latency_budget", 0)
    later = NOW + 31  # those turns have aged out; these leave room for exactly one caller more
    for i in range(40):
        a.observe_turn(BUDGET_MS - grows_by - 1.0, at=later - i / 4)
    verdict = a.verdict(sessions=2, now=later)
    assert (verdict.admit, verdict.headroom) == (True, 1)


def test_the_measured_headroom_counts_callers_until_the_predicted_growth_fills_the_budget() -> None:
    a = admission(session_cpu=0.05, job_ms=60.0, busy=0.1, others_busy=0.0, cores=64)
    by_model = a.verdict(sessions=2, now=NOW).headroom  # no turns yet: the model alone
    for i in range(10):
        a.observe_turn(400.0, at=NOW - i)
    base = a.predicted_ttfa_ms(a.busy_with(2, 2))
    expected = max(m for m in range(0, 50) if 400.0 + a.predicted_ttfa_ms(a.busy_with(2, 2 + m)) - base <= BUDGET_MS)
    assert a.verdict(sessions=2, now=NOW).headroom == min(expected, by_model)
    assert expected < by_model  # here the measured times are what binds


@pytest.mark.parametrize(("job_ms", "cores", "sessions", "headroom"), [
    # worst TTFA(n) = 300 + S max(1, n / cores) / (1 - rho(n)) <= 600, rho(n) = n * 0.06 (the prior) here
    (150.0, 2, 1, 2),  # n <= 3 (225 / 0.82 = 274; four: 300 / 0.76 = 395): two more make three
    (150.0, 2, 3, 0),
    (150.0, 2, 4, 0),  # (already past it: none, not a negative count)
    (100.0, 2, 1, 3),  # n <= 4 (200 / 0.76 = 263; five: 250 / 0.7 = 357)
    (100.0, 4, 1, 5),  # n <= 6 (150 / 0.64 = 234; seven: 175 / 0.58 = 302): more cores share the work
    (300.0, 2, 1, 0),  # one turn's work alone fills the budget
])
def test_callers_whose_turns_fall_together_must_fit_too(job_ms: float, cores: int, sessions: int,
                                                        headroom: int) -> None:
    a = admission(cores=cores, job_ms=job_ms, session_cpu=0.001)  # (the mean load never binds here)
    assert a.verdict(sessions=sessions, now=NOW).headroom == headroom
    if headroom:
        assert a.worst_ttfa_ms(sessions, sessions + headroom) <= BUDGET_MS < a.worst_ttfa_ms(
            sessions, sessions + headroom + 1)


@pytest.mark.parametrize(("busy", "callers", "expected_ms"), [
    (0.1, 1, 300 + 150 / 0.9),  # one turn: its work, slowed by what else keeps the cores busy
    (0.2, 2, 300 + 150 / 0.8),  # two turns on two cores: side by side
    (0.2, 3, 300 + 150 * 1.5 / 0.8),  # three share two cores
    (0.5, 2, 300 + 150 / 0.5),  # the cores half busy with everything else: each job at half speed
    (0.5, 4, 300 + 150 * 2 / 0.5),
    (1.0, 1, math.inf),
])
def test_turns_falling_together_share_the_cores_that_everything_else_leaves(busy: float, callers: int,
                                                                          expected_ms: float) -> None:
    a = admission(cores=2, job_ms=150.0, busy=busy, others_busy=0.0)  # (busy: the load of these callers now)
    assert a.busy_with(callers, callers) == busy
    assert a.worst_ttfa_ms(callers, callers) == pytest.approx(expected_ms)


@pytest.mark.parametrize(("budget_ms", "first_audio_ms", "over"), [
    (600.0, 599.0, False), (600.0, 600.0, False), (600.0, 600.5, True), (0.0, 5000.0, False)])
def test_a_turn_is_over_budget_only_past_a_budget_that_is_set(budget_ms: float, first_audio_ms: float,
                                                               over: bool) -> None:
    a = Admission(budget_ms=budget_ms, eot_silence_ms=EOT_MS, max_sessions=8, cores=2)
    assert a.over_budget(first_audio_ms) is over
