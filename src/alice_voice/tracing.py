"""OpenTelemetry traces of turns: off by default, on with the standard `OTEL_*` environment variables.

A turn is traced when it is over, from the marks the turn policy kept (`TurnTimings`, on the session's
monotonic clock): one `turn` span from the first speech to the last mark, and a child for each stage it
reached: `end_of_turn`, `final_decode`, `agent_first_token`, `tts_first_chunk`, `first_audio_out`,
`barge_in`. Attributes: `alice.session_id`, `alice.turn`, `alice.typed`; never the words (the text is
not even passed here). Nothing runs on the turn's path: the spans are made after the fact, with the
times converted from the monotonic clock to the wall clock once.

`configure_from_environment()` installs the SDK's provider when `OTEL_TRACES_EXPORTER` is `otlp` or
`console` (or `OTEL_EXPORTER_OTLP_ENDPOINT` / `..._TRACES_ENDPOINT` is set) and `OTEL_SDK_DISABLED` is not
true; the exporter reads its own `OTEL_EXPORTER_OTLP_*` settings, the resource `OTEL_SERVICE_NAME` and
`OTEL_RESOURCE_ATTRIBUTES`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping

from opentelemetry import trace

# (span, start mark, end mark) for the children of a turn
STAGES: tuple[tuple[str, str, str], ...] = (
    ("end_of_turn", "user_end", "turn_ended"),
    ("final_decode", "user_end", "final_ready"),
    ("agent_first_token", "reply_started", "agent_first_text"),
    ("tts_first_chunk", "reply_started", "tts_first_audio"),
    ("first_audio_out", "user_end", "first_audio_sent"),
    ("barge_in", "barge_in_speech", "barge_in_silenced"),
)


class TurnTracer:
    def __init__(self, tracer: trace.Tracer | None = None,
                 wall_minus_monotonic: Callable[[], float] = lambda: time.time() - time.monotonic()) -> None:
        self._tracer = tracer or trace.get_tracer("alice_voice")
        self._offset = wall_minus_monotonic

    def turn(self, session_id: str, number: int, marks: Mapping[str, float | bool | None]) -> None:
        """`marks`: the turn's `TurnTimings` fields (monotonic seconds, None where not reached)."""
        offset = self._offset()

        def ns(monotonic: float) -> int:
            return round((monotonic + offset) * 1e9)

        times = {name: value for name, value in marks.items() if isinstance(value, float)}
        if "user_start" not in times:
            return
        attributes: dict[str, str | int | bool] = {"alice.session_id": session_id, "alice.turn": number,
                                                   "alice.typed": bool(marks.get("text_turn"))}
        root = self._tracer.start_span("turn", start_time=ns(times["user_start"]), attributes=attributes)
        context = trace.set_span_in_context(root)
        for name, start, end in STAGES:
            begin, finish = times.get(start), times.get(end)
            if begin is not None and finish is not None and finish >= begin:
                child = self._tracer.start_span(name, context=context, start_time=ns(begin), attributes=attributes)
                child.end(end_time=ns(finish))
        root.end(end_time=ns(max(times.values())))


def configure_from_environment(env: Mapping[str, str] = os.environ) -> bool:
    """Install the SDK's tracer provider if the environment asks for traces; True if it did."""
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    exporter_name = env.get("OTEL_TRACES_EXPORTER", "").lower()
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if (exporter_name in ("", "none") and not endpoint) or exporter_name == "none":
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    exporter: SpanExporter
    if exporter_name == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        exporter = OTLPSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", "alice-voice")}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return True
