"""What opsbot tells Prometheus and OpenTelemetry: the process's own counters and histograms, and the spans of one
trace per intent.

Metrics live in prometheus-client's default registry (each process exports its own; counters are summed across
replicas). Spans go through the OpenTelemetry API: with no SDK configured (the default) every span is a
non-recording no-op. An intent's trace context is stored with it (`traceparent`, W3C), so whatever touches the
intent later, in this process or another after a crash, adds to the same trace.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import Counter, Histogram

# Metrics -------------------------------------------------------------------------------------------------------
_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
_HUMAN = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400)

TRANSITIONS = Counter(
    "opsbot_intent_transitions",
    "Status changes committed by this process",
    ["workflow", "from_status", "to_status"],
)
STEP_SECONDS = Histogram(
    "opsbot_step_duration_seconds",
    "One step attempt (forward or compensation) from its start to its result, by outcome",
    ["workflow", "step", "outcome"],
    buckets=_FAST,
)
REQUEST_TO_APPROVAL = Histogram(
    "opsbot_request_to_approval_seconds",
    "From the request to the approval that made the intent runnable",
    ["workflow"],
    buckets=_HUMAN,
)
APPROVAL_TO_EFFECT = Histogram(
    "opsbot_approval_to_first_effect_seconds",
    "From the approval to the first step's recorded start (the moment before its first side effect)",
    ["workflow"],
    buckets=_FAST,
)
UNKNOWN_OUTCOMES = Counter(
    "opsbot_step_unknown_outcomes",
    "Step attempts whose outcome was unknown (a timeout, a lost answer, a crash mid-step)",
    ["workflow", "step"],
)
UNKNOWN_RESOLVED = Counter(
    "opsbot_step_unknown_resolutions",
    "How a step with an unknown outcome was resolved: observed_done (the probe found the effect), "
    "observed_absent (no effect: run again), unresolved (left UNKNOWN for a human)",
    ["workflow", "step", "how"],
)
TAKEOVERS = Counter(
    "opsbot_lease_takeovers", "Runs taken over from an executor whose lease lapsed (it died)", ["workflow"]
)
LOCK_WAITS = Counter(
    "opsbot_lock_waits", "Claims that found a resource lock held and put the intent to wait", ["workflow"]
)
SLACK_CALLS = Counter(
    "opsbot_slack_api_calls",
    "Slack Web API calls by method and result (ok, ratelimited, an error code, http_5xx, connection_error)",
    ["method", "result"],
)
PASS_SECONDS = Histogram(
    "opsbot_pass_duration_seconds",
    "One pass of a background loop (executor, reconciler, slack-delivery)",
    ["loop"],
    buckets=_FAST,
)


# Traces --------------------------------------------------------------------------------------------------------
_tracer = trace.get_tracer("opsbot")
_propagator = TraceContextTextMapPropagator()


def traceparent() -> str | None:
    """The current span's context as a W3C `traceparent`, to store with an intent (None when not tracing)."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def span(name: str, parent: str | None = None, attributes: Mapping[str, Any] | None = None) -> Iterator[trace.Span]:
    """A span, current for the block. With `parent` (an intent's stored traceparent) it joins that trace, wherever
    and whenever it runs; without, it is a child of the current span (or a new trace)."""
    ctx = _propagator.extract({"traceparent": parent}) if parent else None
    attrs = {k: v for k, v in (attributes or {}).items() if v is not None}
    with _tracer.start_as_current_span(name, context=ctx, attributes=attrs) as current:
        yield current


def current_ids() -> dict[str, str]:
    """`trace_id` and `span_id` of the current span, for log lines (empty when not tracing)."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return {}
    return {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}
