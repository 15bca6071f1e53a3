"""The split of the process's CPU time by stage of a call: one row per rule of `split_by_stage`."""

from __future__ import annotations

import pytest

from alice_voice.compute import Priority
from alice_voice.compute.cpu_stages import STAGES, split_by_stage
from alice_voice.compute.scheduler import JobTimes

LOOP, WORKER, CODEC, DECODER, OTHER_PY, CT2_FG, CT2_BG = 1, 2, 3, 4, 5, 6, 7
PYTHON = {LOOP: "MainThread", WORKER: "inference-turn-0", CODEC: "media-codec_0", DECODER: "audio-decoder",
          OTHER_PY: "asyncio_0"}


def jobs(cpu: dict[Priority, float] | None = None, run: dict[Priority, float] | None = None) -> JobTimes:
    return JobTimes(run or {}, cpu or {}, frozenset({WORKER}))


CASES = [
    # (what, threads: tid -> (cpu s, nice), job times, expected stages (the others 0))
    ("the loop's thread is the event loop", {LOOP: (0.3, 0)}, jobs(), {"event_loop": 0.3}),
    ("aiortc's decoder and the codec executor are the media", {CODEC: (0.2, 0), DECODER: (0.1, 0)}, jobs(),
     {"media": 0.3}),
    ("a worker's jobs count by their priority, from their own thread time",
     {WORKER: (0.6, 0)}, jobs({Priority.HEARING: 0.1, Priority.END_OF_TURN: 0.2, Priority.FIRST_TTS: 0.1,
                               Priority.TTS: 0.1, Priority.FINAL: 0.05}),
     {"hearing": 0.1, "end_of_turn": 0.2, "tts": 0.2, "asr_final": 0.05, "other": 0.05}),
    ("a library's niced threads decode partials", {CT2_BG: (0.4, 10)}, jobs(), {"asr_partial": 0.4}),
    ("its normal ones decode finals and first partials, shared by run time",
     {CT2_FG: (0.4, 0)}, jobs(run={Priority.FINAL: 0.3, Priority.FIRST_PARTIAL: 0.1}),
     {"asr_final": 0.3, "asr_partial": 0.1}),
    ("with no decode run in the interval, they count as finals", {CT2_FG: (0.2, 0)}, jobs(), {"asr_final": 0.2}),
    ("other Python threads are other", {OTHER_PY: (0.2, 0)}, jobs(), {"other": 0.2}),
]


@pytest.mark.parametrize(("threads", "times", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_split_by_stage(threads: dict[int, tuple[float, int]], times: JobTimes, expected: dict[str, float]) -> None:
    split = split_by_stage(threads, PYTHON, LOOP, times)
    assert set(split) == set(STAGES)
    assert split == pytest.approx({stage: expected.get(stage, 0.0) for stage in STAGES})
    assert sum(split.values()) == pytest.approx(sum(cpu for cpu, _ in threads.values()))  # nothing lost or doubled
