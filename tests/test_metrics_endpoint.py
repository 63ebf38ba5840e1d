"""`/metrics` of real processes: `opsbot serve` after a whole flow, `opsbot worker` on its metrics port, and the
Grafana dashboard, whose every query must name a metric the process exports."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from devstack.demo import ALICE, BOB, CONFIG, OPS, REQUEST, local_stack
from store.migrate import upgrade

DASHBOARD = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "opsbot-dashboard.json"


def _until(what: str, predicate: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def scraped() -> Iterator[str]:
    """/metrics of one `opsbot serve` after a replica was requested, approved and created."""
    env = {"OPSBOT_METRICS_TTL_SECONDS": "0", "OPSBOT_LOG_LEVEL": "WARNING"}
    with local_stack(CONFIG, {ALICE: "alice", BOB: "bob"}, env) as stack:
        fake = stack.fake
        assert stack.driver.slash_command("/ops", REQUEST, user=ALICE, channel=OPS).ok
        _until("the plan message", lambda: fake.messages(OPS))
        plan = fake.messages(OPS)[0]
        stack.driver.click(OPS, plan.ts, "ops_approve", user=BOB)
        _until("the verdict", lambda: any("Succeeded" in m.text for m in fake.thread(OPS, plan.ts)), timeout=90)
        metrics_url = stack.events_url.replace("/slack/events", "/metrics")
        _until("the outbox to drain", lambda: "opsbot_outbox_messages 0.0" in requests.get(metrics_url, timeout=5).text)
        response = requests.get(metrics_url, timeout=5)
        assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
        yield response.text


def value(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def exported(text: str) -> set[str]:
    """Every series name the exposition can hold: each TYPE line's family with its type's suffixes."""
    names: set[str] = set()
    suffixes = {"histogram": ("_bucket", "_sum", "_count", "_created"), "counter": ("", "_created"), "gauge": ("",)}
    for kind_name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.M):
        base = kind_name.removesuffix("_total") if kind == "counter" else kind_name
        names |= {kind_name + s for s in suffixes.get(kind, ("",))}
        if kind == "counter":
            names |= {base + "_total", base + "_created"}
    return names


def test_serve_exports_what_a_whole_flow_did(scraped: str) -> None:
    wf = {"workflow": "rds.create-replica"}
    assert value(scraped, "opsbot_intents", environment="prod", status="succeeded", **wf) == 1
    assert value(scraped, "opsbot_intent_transitions_total", from_status="running", to_status="succeeded", **wf) == 1
    assert value(scraped, "opsbot_step_duration_seconds_count", step="create_replica", outcome="succeeded", **wf) == 1
    assert value(scraped, "opsbot_request_to_approval_seconds_count", **wf) == 1
    assert value(scraped, "opsbot_approval_to_first_effect_seconds_count", **wf) == 1
    assert (value(scraped, "opsbot_slack_api_calls_total", method="chat.postMessage", result="ok") or 0) >= 2
    assert (value(scraped, "opsbot_audit_chain_events") or 0) >= 4  # requested, approved, claimed, succeeded
    assert value(scraped, "opsbot_outbox_messages") == 0
    assert value(scraped, "opsbot_store_up") == 1
    assert (value(scraped, "opsbot_pass_duration_seconds_count", loop="reconciler") or 0) >= 1
    assert "xoxb-" not in scraped and "local-password" not in scraped  # nothing secret in a label


def test_every_dashboard_query_names_an_exported_metric(scraped: str) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    names = exported(scraped)
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bopsbot_[a-z0-9_]+", target["expr"])
    }
    assert len(dashboard["panels"]) >= 12 and queried
    assert queried <= names, sorted(queried - names)
    # and every metric the issue asks for is on a panel
    for needed in (
        "opsbot_intents",
        "opsbot_intent_transitions_total",
        "opsbot_step_duration_seconds_bucket",
        "opsbot_request_to_approval_seconds_bucket",
        "opsbot_approval_to_first_effect_seconds_bucket",
        "opsbot_step_unknown_resolutions_total",
        "opsbot_lease_takeovers_total",
        "opsbot_lock_waits_total",
        "opsbot_outbox_messages",
        "opsbot_outbox_oldest_age_seconds",
        "opsbot_slack_api_calls_total",
        "opsbot_pass_duration_seconds_bucket",
        "opsbot_audit_chain_events",
    ):
        assert needed in queried, needed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_worker_serves_metrics_on_its_own_port(tmp_path: Path, aws: str) -> None:
    config = tmp_path / "opsbot.yml"
    config.write_text(yaml.safe_dump(CONFIG))
    db_url = f"sqlite:///{tmp_path / 'opsbot.db'}"
    upgrade(db_url)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSBOT_", "SLACK_"))}
    env.update(
        OPSBOT_DATABASE_URL=db_url,
        OPSBOT_CONFIG=str(config),
        OPSBOT_METRICS_PORT=str(port),
        OPSBOT_METRICS_TTL_SECONDS="0",
        OPSBOT_RECONCILE_INTERVAL_SECONDS="0.2",
        AWS_ENDPOINT_URL=aws,
    )
    log = (tmp_path / "worker.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "opsbot.cli", "worker"], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}/metrics"
    try:

        def scraped() -> str | None:
            try:
                text = requests.get(url, timeout=2).text
            except requests.ConnectionError:
                return None
            return text if 'opsbot_pass_duration_seconds_count{loop="reconciler"}' in text else None

        _until("the worker's metrics", scraped, timeout=60)
        text = scraped()
        assert text is not None and value(text, "opsbot_store_up") == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, (tmp_path / "worker.log").read_text()
