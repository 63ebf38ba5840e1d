"""Metrics and traces: what a crash-recovered intent leaves in both, the store's gauges, and tracing's switch."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
import structlog
from opentelemetry import trace
from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from opsbot.telemetry import tracing_requested
from store.db import make_engine
from store.metrics import StoreCollector
from tests.conftest import approve_current, create_source
from workflows.deps import Runtime
from workflows.executor import Executor
from workflows.logs import configure_logging
from workflows.model import IntentStatus
from workflows.reconciler import Reconciler
from workflows.runtime import FrozenClock
from workflows.service import OpsService
from workflows.telemetry import span

PARAMS = {"source": "billing-db", "replica": "billing-db-r1"}
WF = "rds.create-replica"
APPROVING = {"workflow": WF, "from_status": "pending_approval", "to_status": "approved"}


class Crash(BaseException):
    """The process dying at a fault point: nothing in the executor catches it."""


@dataclasses.dataclass
class CrashAt:
    point: str
    armed: bool = True

    def reached(self, point: str) -> None:
        if self.armed and point == self.point:
            self.armed = False
            raise Crash(point)


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """The SDK with an in-memory exporter for this module (the process's provider can be set once), and AWS calls
    traced through botocore's instrumentation, as `configure_tracing` does when tracing is on."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    BotocoreInstrumentor().instrument()  # type: ignore[no-untyped-call]
    yield exporter
    BotocoreInstrumentor().uninstrument()  # type: ignore[no-untyped-call]
    provider.shutdown()


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_crash_recovered_intent_is_one_trace_and_its_metrics_say_what_happened(
    runtime: Runtime, aws: str, clock: FrozenClock, spans: InMemorySpanExporter
) -> None:
    """The process dies after AWS created the replica; another executor takes over. Every span, from the request
    to the verdict, across both executors and the reconciler, is in the intent's one trace, and the counters show
    the unknown outcome, the takeover and the probe that resolved it."""
    step = "create_replica"
    before = {
        "unknown": sample("opsbot_step_unknown_outcomes_total", workflow=WF, step=step),
        "resolved": sample("opsbot_step_unknown_resolutions_total", workflow=WF, step=step, how="observed_done"),
        "takeovers": sample("opsbot_lease_takeovers_total", workflow=WF),
        "approved": sample(
            "opsbot_intent_transitions_total", workflow=WF, from_status="pending_approval", to_status="approved"
        ),
        "waited": sample("opsbot_request_to_approval_seconds_count", workflow=WF),
        "first_effect": sample("opsbot_approval_to_first_effect_seconds_count", workflow=WF),
        "done": sample("opsbot_step_duration_seconds_count", workflow=WF, step=step, outcome="succeeded"),
    }
    create_source(aws)
    spans.clear()
    ops = OpsService(runtime)
    intent = ops.request(WF, dict(PARAMS), "prod", "alice").intent
    assert intent.traceparent is not None
    approve_current(ops, intent.id, "bob")

    crashing = dataclasses.replace(runtime, faults=CrashAt(f"{step}:after_effect"))
    with pytest.raises(Crash):
        Executor(crashing, "dies").run_once()
    clock.advance(runtime.lease_seconds + 1)
    Reconciler(runtime).reconcile_due()
    [done] = Executor(runtime, "survivor").run_until_idle()
    assert done.status is IntentStatus.SUCCEEDED, done.status_reason

    finished = spans.get_finished_spans()
    traces = {s.context.trace_id for s in finished if s.context is not None}
    assert len(traces) == 1, sorted(s.name for s in finished)
    names = [s.name for s in finished]
    assert names.count("opsbot.request") == 1 and names.count("opsbot.approve") == 1
    assert names.count("opsbot.run") == 2  # the one that died and the one that finished
    assert "opsbot.check" in names  # the reconciler's takeover
    assert names.count(f"opsbot.step {step}") == 2  # the attempt that crashed, and its resolution
    assert f"opsbot.probe {step}" in names
    aws_calls = [s for s in finished if s.attributes and s.attributes.get("rpc.system") == "aws-api"]
    assert any(s.name == "RDS.CreateDBInstanceReadReplica" for s in aws_calls), sorted({s.name for s in aws_calls})
    runs = [dict(s.attributes or {}).get("opsbot.status") for s in finished if s.name == "opsbot.run"]
    assert runs == [None, "succeeded"]  # the first never reached a verdict
    by_id = {s.context.span_id: s for s in finished if s.context is not None}
    create_call = next(s for s in aws_calls if s.name == "RDS.CreateDBInstanceReadReplica")
    assert _ancestors(create_call, by_id) == [f"opsbot.step {step}", "opsbot.run", "opsbot.request"]

    assert sample("opsbot_step_unknown_outcomes_total", workflow=WF, step=step) == before["unknown"] + 1
    assert (
        sample("opsbot_step_unknown_resolutions_total", workflow=WF, step=step, how="observed_done")
        == before["resolved"] + 1
    )
    assert sample("opsbot_lease_takeovers_total", workflow=WF) == before["takeovers"] + 1
    assert sample("opsbot_intent_transitions_total", **APPROVING) == before["approved"] + 1
    assert sample("opsbot_request_to_approval_seconds_count", workflow=WF) == before["waited"] + 1
    assert sample("opsbot_approval_to_first_effect_seconds_count", workflow=WF) == before["first_effect"] + 1
    assert (
        sample("opsbot_step_duration_seconds_count", workflow=WF, step=step, outcome="succeeded") == before["done"] + 1
    )


def _ancestors(s: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    chain = []
    while s.parent is not None and s.parent.span_id in by_id:
        s = by_id[s.parent.span_id]
        chain.append(s.name)
    return chain


def test_a_rolled_back_move_is_not_counted(runtime: Runtime, aws: str) -> None:
    """Transitions are counted once committed: a transaction that fails after the move counts nothing."""
    create_source(aws)
    ops = OpsService(runtime)
    intent = ops.request(WF, dict(PARAMS), "prod", "alice").intent
    labels = {"workflow": WF, "from_status": "pending_approval", "to_status": "cancelled"}
    before = sample("opsbot_intent_transitions_total", **labels)
    from workflows.model import Move

    with pytest.raises(RuntimeError), runtime.store.transaction() as tx:
        tx.move(intent, Move(IntentStatus.CANCELLED, "no"), runtime.clock.now())
        raise RuntimeError("after the move, before the commit")
    assert sample("opsbot_intent_transitions_total", **labels) == before
    ops.cancel(intent.id, "alice", "not needed")
    assert sample("opsbot_intent_transitions_total", **labels) == before + 1


def test_tracing_is_off_by_default_spans_record_nothing_and_logs_carry_no_ids() -> None:
    """A fresh process with the services built and no OTEL_* variables: no SDK, a span is a non-recording no-op."""
    code = (
        "from opsbot.telemetry import configure_tracing\n"
        "from opentelemetry import trace\n"
        "from workflows.telemetry import current_ids, span, traceparent\n"
        "assert configure_tracing() is None\n"
        "assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)\n"
        "with span('opsbot.test') as s:\n"
        "    assert not s.is_recording() and current_ids() == {} and traceparent() is None\n"
        "print('off')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "off", done.stderr


def test_log_lines_carry_the_current_span_ids(spans: InMemorySpanExporter) -> None:
    """A line written inside a span names its trace and span, ours and libraries' alike; outside, neither."""
    saved = (structlog.get_config(), logging.getLogger().handlers[:], logging.getLogger().level, threading.excepthook)
    out = io.StringIO()
    try:
        configure_logging("INFO", stream=out)
        with span("opsbot.test") as current:
            structlog.get_logger("opsbot.test").info("inside")
            logging.getLogger("botocore.test").warning("library inside")
        structlog.get_logger("opsbot.test").info("outside")
    finally:
        config, handlers, level, hook = saved
        structlog.configure(**config)
        logging.getLogger().handlers, threading.excepthook = handlers, hook
        logging.getLogger().setLevel(level)
        logging.captureWarnings(False)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    ctx = current.get_span_context()
    inside = [e for e in lines if "inside" in e["event"]]
    assert len(inside) == 2
    for e in inside:
        assert (e["trace_id"], e["span_id"]) == (format(ctx.trace_id, "032x"), format(ctx.span_id, "016x"))
    [outside] = [e for e in lines if e["event"] == "outside"]
    assert "trace_id" not in outside


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"OTEL_TRACES_EXPORTER": "none"}, None),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "console,otlp"}, "console"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}, None),
    ],
)
def test_tracing_is_switched_by_the_standard_variables(environ: dict[str, str], expected: str | None) -> None:
    assert tracing_requested(environ) == expected


def _gauges(collector: StoreCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value for family in collector.collect() for s in family.samples
    }


def test_store_gauges_count_open_and_recent_intents_and_say_when_the_store_is_down(
    runtime: Runtime, aws: str, db_url: str
) -> None:
    """Open intents by workflow, environment and status; the outbox and the audit chain; `opsbot_store_up` 0, not
    an exception, when the store cannot be read."""
    create_source(aws)
    ops = OpsService(runtime)
    waiting = ops.request(WF, dict(PARAMS), "prod", "alice").intent
    other = ops.request(WF, {"source": "billing-db", "replica": "billing-db-r2"}, "prod", "alice").intent
    ops.cancel(other.id, "alice", "not needed")
    engine = make_engine(db_url)
    collector = StoreCollector(engine, ttl=0, now=runtime.clock.now)
    gauges = _gauges(collector)
    labels = (("environment", "prod"), ("status", "pending_approval"), ("workflow", WF))
    assert gauges[("opsbot_intents", labels)] == 1
    assert gauges[("opsbot_intents", (("environment", "prod"), ("status", "cancelled"), ("workflow", WF)))] == 1
    with runtime.store.transaction() as tx:
        head = int(tx.audit_head().split(":")[0])
    assert gauges[("opsbot_audit_chain_events", ())] == head
    assert gauges[("opsbot_outbox_messages", ())] == 0
    assert gauges[("opsbot_store_up", ())] == 1
    assert waiting.id  # still pending: counted above

    cached = StoreCollector(engine, ttl=3600, now=runtime.clock.now)
    first = _gauges(cached)
    ops.cancel(waiting.id, "alice", "not needed either")
    assert _gauges(cached) == first  # read at most once per ttl, however often scraped

    broken = StoreCollector(sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none"), ttl=0)
    assert _gauges(broken) == {("opsbot_store_up", ()): 0}
    engine.dispose()


def test_the_exposition_has_every_engine_metric_with_its_unit() -> None:
    """Every family the engine defines is in the text format with HELP and TYPE, named opsbot_…, units suffixed."""
    from prometheus_client import generate_latest

    families = {f.name: f for f in text_string_to_metric_families(generate_latest(REGISTRY).decode())}
    for name in (
        "opsbot_intent_transitions",
        "opsbot_step_duration_seconds",
        "opsbot_request_to_approval_seconds",
        "opsbot_approval_to_first_effect_seconds",
        "opsbot_step_unknown_outcomes",
        "opsbot_step_unknown_resolutions",
        "opsbot_lease_takeovers",
        "opsbot_lock_waits",
        "opsbot_slack_api_calls",
        "opsbot_pass_duration_seconds",
    ):
        assert name in families, sorted(families)
        assert families[name].documentation
    assert families["opsbot_step_duration_seconds"].type == "histogram"
    assert families["opsbot_slack_api_calls"].type == "counter"


def test_slack_calls_are_counted_by_method_and_result_429s_included() -> None:
    """Each Web API call counts once by its result: ok, ratelimited (a 429, retried or not), connection_error."""
    from slack_sdk.errors import SlackApiError

    from bot.slack_client import CountedRateLimitRetry, InstrumentedWebClient
    from fakeslack import FakeSlack
    from tests.slack_harness import CHANNELS, OPS, SECRET, TOKEN, USERS

    def count(result: str) -> float:
        return sample("opsbot_slack_api_calls_total", method="chat.postMessage", result=result)

    before = {r: count(r) for r in ("ok", "ratelimited", "connection_error")}
    with FakeSlack(TOKEN, SECRET, channels=CHANNELS, users=USERS, rate_burst=1, rate_per_second=0.01) as fake:
        client = InstrumentedWebClient(
            token=TOKEN, base_url=fake.api_url, retry_handlers=[CountedRateLimitRetry(max_retry_count=0)]
        )
        client.chat_postMessage(channel=OPS, text="one")
        with pytest.raises(SlackApiError):
            client.chat_postMessage(channel=OPS, text="two")  # the channel's burst is spent: 429
        gone = fake.api_url
    with pytest.raises(OSError):
        InstrumentedWebClient(token=TOKEN, base_url=gone, timeout=2).chat_postMessage(channel=OPS, text="three")
    assert {r: count(r) - before[r] for r in before} == {"ok": 1, "ratelimited": 1, "connection_error": 1}
