"""Traces of turns with the OpenTelemetry SDK's in-memory exporter: a spoken turn, and a barge-in, on the
virtual-clock session harness; and traces stay off unless the OTEL_* environment asks for them."""

from __future__ import annotations

import subprocess
import sys

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from alice_voice.tracing import TurnTracer, configure_from_environment
from fakes.scripted import ScriptedAgent
from support.session_harness import SessionHarness
from support.virtual_time import VIRTUAL_TIME

LONG = "Here is a long answer with many words so that it plays for several seconds on end"


def recording() -> tuple[TurnTracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return TurnTracer(provider.get_tracer("test"), wall_minus_monotonic=lambda: 0.0), exporter


def ms(span: ReadableSpan) -> float:
    assert span.start_time is not None and span.end_time is not None
    return (span.end_time - span.start_time) / 1e6


@pytest.mark.asyncio
@VIRTUAL_TIME
async def test_a_spoken_turn_is_one_span_with_a_child_per_stage() -> None:
    tracer, exporter = recording()
    async with SessionHarness(tracer=tracer) as s:
        s.say("what time is it", 800)
        s.pause(1500)
        await s.run_until_event("turn.metrics")
        timings = s.events("turn.metrics")[0]["timings"]
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert set(spans) == {"turn", "end_of_turn", "final_decode", "agent_first_token", "tts_first_chunk",
                          "first_audio_out"}
    root = spans.pop("turn")
    assert root.parent is None and all(span.parent is not None and span.parent.span_id == root.context.span_id
                                       for span in spans.values())
    assert ms(spans["end_of_turn"]) == pytest.approx(timings["end_of_turn_ms"], abs=0.01)
    assert ms(spans["first_audio_out"]) == pytest.approx(timings["first_audio_ms"], abs=0.01)
    assert 800 <= ms(root) <= 800 + 400, "from the first speech to the first audio"
    for span in (root, *spans.values()):
        assert dict(span.attributes or {}) == {"alice.session_id": "harness", "alice.turn": 1, "alice.typed": False}


@pytest.mark.asyncio
@VIRTUAL_TIME
async def test_a_barge_in_has_its_span() -> None:
    tracer, exporter = recording()
    async with SessionHarness(tracer=tracer, agent=ScriptedAgent({"tell me more": LONG})) as s:
        s.say("tell me more", 600)
        s.pause(600)
        await s.run_until_event("tts.started")
        await s.run(1000)
        s.say("stop", 400)
        s.pause(1200)
        await s.run_until_event("turn.metrics")
        barge_in = s.events("turn.metrics")[0]["timings"]["barge_in_ms"]
    [span] = [span for span in exporter.get_finished_spans() if span.name == "barge_in"]
    assert ms(span) == pytest.approx(barge_in, abs=0.01) and ms(span) <= 40


@pytest.mark.parametrize("env", [{}, {"OTEL_TRACES_EXPORTER": "none"},
                                 {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}])
def test_traces_are_off_unless_the_environment_asks(env: dict[str, str]) -> None:
    assert configure_from_environment(env) is False


def test_the_environment_turns_them_on() -> None:
    script = ("from alice_voice.tracing import configure_from_environment as c; from opentelemetry import trace; "
              "print(c(), type(trace.get_tracer_provider()).__name__)")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False,
                          env={"PATH": "/usr/bin", "OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "alice"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "TracerProvider"]
