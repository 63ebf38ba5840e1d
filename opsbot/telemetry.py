"""Tracing for the process, from the standard OpenTelemetry environment variables; off unless they ask for it.

On when `OTEL_TRACES_EXPORTER` names an exporter (`otlp`, `console`) or an OTLP endpoint is set
(`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); `OTEL_SDK_DISABLED=true` turns it off.
The OTLP exporter (HTTP/protobuf) reads its own `OTEL_EXPORTER_OTLP_*` settings; the resource reads
`OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` (the service is `opsbot` unless they say otherwise). When on,
AWS calls are traced through botocore's instrumentation.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping

import structlog
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

log = structlog.get_logger("opsbot.telemetry")
_configured = threading.Lock()
_done = False


def tracing_requested(environ: Mapping[str, str]) -> str | None:
    """The exporter the environment asks for (`otlp`, `console`), or None: tracing stays off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter and exporter != "none":
        return exporter.split(",")[0].strip()
    if environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return "otlp"
    return None


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    if name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    raise ValueError(f"OTEL_TRACES_EXPORTER={name!r} is not supported here (use otlp or console)")


def configure_tracing(environ: Mapping[str, str] | None = None) -> TracerProvider | None:
    """Install the SDK's tracer provider once per process, if the environment asks for tracing."""
    global _done
    env = os.environ if environ is None else environ
    with _configured:
        if _done:
            return None
        _done = True
        name = tracing_requested(env)
        if name is None:
            return None
        provider = TracerProvider(resource=Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", "opsbot")}))
        provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
        trace.set_tracer_provider(provider)
        instrument_aws()
        log.info("tracing_on", exporter=name)
        return provider


def instrument_aws() -> None:
    """Spans for every boto3 call (the AWS adapter's), children of the step or probe that made them."""
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor

    instrumentor = BotocoreInstrumentor()  # type: ignore[no-untyped-call]
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
