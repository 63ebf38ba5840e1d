"""A secret canary in a DSN or a parameter never appears in logs, audit events or CLI output."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import structlog
import yaml
from structlog.testing import capture_logs

from tests.conftest import CONFIG, approve_current, create_source
from workflows.logs import configure_logging
from workflows.redaction import redact, redact_text

CANARY = "CANARY-7d1f2c"


def test_redaction_masks_every_kind_of_secret() -> None:
    """DSN passwords, key=value passwords, Slack tokens, AWS keys and bearer tokens are masked."""
    samples = [
        f"postgresql+psycopg://admin:{CANARY}@db.internal:5432/billing",
        f"host=db user=admin password={CANARY} dbname=billing",
        f"xoxb-1234567890-{CANARY}",
        f"xapp-1-{CANARY}",
        f"aws_secret_access_key={CANARY}aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        f"Authorization: Bearer {CANARY}abcdef",
    ]
    for text in samples:
        assert CANARY not in redact_text(text), text
    assert redact({"password": CANARY, "nested": {"client_secret": CANARY}, "idempotency_token": "keep"}) == {
        "password": "***",
        "nested": {"client_secret": "***"},
        "idempotency_token": "keep",
    }
    assert "AKIA" not in redact_text("key AKIAABCDEFGHIJKLMNOP used")


def test_log_events_pass_through_the_redaction_processor(capsys: object) -> None:
    """A log line with a DSN in any field is rendered without the password."""
    from io import StringIO

    stream = StringIO()
    configure_logging("INFO", stream)
    structlog.get_logger("t").info(
        "connecting",
        dsn=f"postgresql://u:{CANARY}@h/db",
        url=f"postgresql://u:{CANARY}@h/db",
        error=f"failed for password={CANARY}",
    )
    line = stream.getvalue()
    assert "connecting" in line and CANARY not in line
    event = json.loads(line)
    assert event["dsn"] == "***" and event["url"] == "postgresql://u:***@h/db"


def test_canary_never_leaves_through_cli_logs_or_events(tmp_path: Path, aws: str, pg_url: str) -> None:
    """With the canary in the store DSN and in parameters, no output or stored event contains it."""
    create_source(aws)
    config = tmp_path / "opsbot.yml"
    config.write_text(yaml.safe_dump(CONFIG))
    # Trust auth accepts any password, so the canary can sit in a working DSN.
    db_url = pg_url.replace("postgres@", f"postgres:{CANARY}@", 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSBOT_")}
    env.update(
        OPSBOT_DATABASE_URL=db_url,
        OPSBOT_CONFIG=str(config),
        AWS_ENDPOINT_URL=aws,
        OPSBOT_LOG_LEVEL="DEBUG",
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "opsbot.cli", *args], env=env, capture_output=True, text=True, timeout=120
        )

    runs = [
        cli(
            "request",
            "rds.create-replica",
            "source=billing-db",
            "replica=billing-db-r9",
            "env=prod",
            "--actor",
            "alice",
        ),
        cli(
            "request",
            "rds.create-replica",
            f"source=postgres://x:{CANARY}@h",
            "replica=r",
            "env=prod",
            "--actor",
            "alice",
        ),
        cli("request", "rds.create-replica", f"password={CANARY}", "env=prod", "--actor", "alice"),
        cli("request", "rds.create-replica", CANARY, "env=prod", "--actor", "alice"),
    ]
    intent_id = re.search(r"opsbot approve (\w+)", runs[0].stdout).group(1)  # type: ignore[union-attr]
    plan_hash = re.search(r"plan hash\s+([0-9a-f]{64})", runs[0].stdout).group(1)  # type: ignore[union-attr]
    runs += [
        cli("approve", intent_id, "--plan-hash", plan_hash, "--actor", "bob"),
        cli("reconcile"),
        cli("intents", "show", intent_id),
        cli("intents", "list"),
        cli("audit", "verify"),
    ]
    assert runs[0].returncode == 0 and runs[1].returncode == 2 and runs[2].returncode == 2
    assert "succeeded" in runs[6].stdout and "audit chain intact" in runs[8].stdout
    assert "Traceback" not in "".join(r.stderr for r in runs)
    for r in runs:
        assert CANARY not in r.stdout and CANARY not in r.stderr, r.args
    from sqlalchemy import create_engine, text

    engine = create_engine(pg_url)
    with engine.connect() as conn:
        for table in ("audit_events", "intents", "step_checkpoints", "approvals"):
            rows = conn.execute(text(f"SELECT * FROM {table}")).fetchall()
            assert CANARY not in repr(rows), table
    engine.dispose()


def test_capture_logs_shows_bound_intent_context(runtime: object, aws: str) -> None:
    """Executor log events carry the intent id, workflow and plan hash bound as context."""
    from workflows.executor import Executor
    from workflows.service import OpsService

    create_source(aws)
    ops = OpsService(runtime)  # type: ignore[arg-type]
    intent = ops.request(
        "rds.create-replica", {"source": "billing-db", "replica": "billing-db-r1"}, "prod", "alice"
    ).intent
    approve_current(ops, intent.id, "bob")
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        Executor(runtime, "t").run_once()  # type: ignore[arg-type]
    stopped = [e for e in logs if e["event"] == "intent_stopped"]
    assert stopped and stopped[0]["intent_id"] == intent.id and stopped[0]["workflow"] == "rds.create-replica"
    assert stopped[0]["plan_hash"] == intent.plan_hash[:12]


def test_library_logs_are_json_and_redacted_too() -> None:
    """A stdlib log record (as Bolt or APScheduler write them) comes out as redacted JSON on the same stream."""
    import logging
    from io import StringIO

    stream = StringIO()
    configure_logging("INFO", stream)
    logging.getLogger("slack_bolt.App").warning("failed to call %s", f"postgresql://u:{CANARY}@h/db")
    [line] = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["logger"] == "slack_bolt.App" and record["level"] == "warning"
    assert CANARY not in line and "***" in record["event"]
