"""Where the process's CPU goes, by stage of a call: the event loop (packets, the conversation), the media
codec (Opus), the hearing (VAD, echo guard), the end-of-turn model, partial and final decodes, speech
synthesis, the rest.

Three sources, each exact for its part, combined once a second from what the kernel and the scheduler say:

- the event loop's own thread and the media codec's threads (aiortc's decoder threads, the loop's default
  executor, where aiortc encodes), from the kernel's per-thread counters;
- the scheduler's worker threads, per job priority, from each job's own `thread_time` (ONNX models run in
  the calling thread: hearing, end of turn, synthesis, and the Python half of a decode);
- the threads a model library starts itself (CTranslate2's decoders): those started in the background lane
  run niced (partial decodes), the others decode finals and an utterance's first partial, shared between
  the two in proportion to their run time.

Whatever no source claims (the workers between jobs, other Python threads) is `other`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from alice_voice.compute.priority import Priority
from alice_voice.compute.scheduler import InferenceScheduler, JobTimes

STAGES = ("event_loop", "media", "hearing", "end_of_turn", "asr_partial", "asr_final", "tts", "other")
_STAGE_OF = {Priority.HEARING: "hearing", Priority.END_OF_TURN: "end_of_turn", Priority.FINAL: "asr_final",
             Priority.FIRST_PARTIAL: "asr_partial", Priority.PARTIAL: "asr_partial",
             Priority.FIRST_TTS: "tts", Priority.TTS: "tts"}


MEDIA_THREADS = ("media-codec", "audio-decoder", "video-decoder")  # thread name prefixes (see api/app.py, aiortc)


def split_by_stage(threads: Mapping[int, tuple[float, int]], python_threads: Mapping[int, str], loop_thread: int,
                   jobs: JobTimes) -> dict[str, float]:
    """CPU seconds per stage over one interval. `threads`: each thread's CPU seconds in the interval and its
    niceness; `python_threads`: the names of the threads Python started (by native id); `jobs`: the
    scheduler's job times over the same interval (deltas)."""
    stages = dict.fromkeys(STAGES, 0.0)
    total = sum(cpu for cpu, _ in threads.values())
    stages["event_loop"] = threads.get(loop_thread, (0.0, 0))[0]
    stages["media"] = sum(threads.get(tid, (0.0, 0))[0] for tid, name in python_threads.items()
                          if name.startswith(MEDIA_THREADS))
    for priority, cpu in jobs.cpu_s.items():
        stages[_STAGE_OF[priority]] += cpu
    native = [(cpu, nice) for tid, (cpu, nice) in threads.items()
              if tid != loop_thread and tid not in jobs.workers and tid not in python_threads]
    stages["asr_partial"] += sum(cpu for cpu, nice in native if nice > 0)
    foreground = sum(cpu for cpu, nice in native if nice <= 0)
    final_s, first_partial_s = jobs.run_s.get(Priority.FINAL, 0.0), jobs.run_s.get(Priority.FIRST_PARTIAL, 0.0)
    final_share = final_s / (final_s + first_partial_s) if final_s + first_partial_s > 0 else 1.0
    stages["asr_final"] += foreground * final_share
    stages["asr_partial"] += foreground * (1.0 - final_share)
    stages["other"] = max(0.0, total - sum(stages.values()))
    return stages


class StageCpu:
    """`split_by_stage` over successive intervals of a scheduler's (cumulative) job times."""

    def __init__(self, compute: InferenceScheduler) -> None:
        self._compute = compute
        self._last = compute.job_times()

    def split(self, threads: Mapping[int, tuple[float, int]], loop_thread: int) -> dict[str, float]:
        """Per stage, the CPU seconds since the last call (`threads`: over the same interval)."""
        now = self._compute.job_times()
        last, self._last = self._last, now
        delta = JobTimes({p: s - last.run_s.get(p, 0.0) for p, s in now.run_s.items()},
                         {p: s - last.cpu_s.get(p, 0.0) for p, s in now.cpu_s.items()}, now.workers)
        python_threads = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
        return split_by_stage(threads, python_threads, loop_thread, delta)
