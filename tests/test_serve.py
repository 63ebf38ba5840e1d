"""`opsbot serve` as a real process: HTTP mode, /healthz, JSON logs on stdout, clean shutdown; worker wiring."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from devstack.demo import start_serve
from fakeslack import FakeSlack, SlackDriver
from opsbot.settings import Settings
from opsbot.wiring import build_services
from opsbot.worker import start_worker
from tests.slack_harness import APPROVER, CHANNELS, OPS, REQUESTER, SECRET, SLACK_CONFIG, TOKEN, USERS
from workflows.errors import ConfigError


def _env(tmp_path: Path, db_url: str, aws: str, fake: FakeSlack) -> dict[str, str]:
    config = tmp_path / "opsbot.yml"
    config.write_text(yaml.safe_dump(SLACK_CONFIG))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSBOT_", "SLACK_"))}
    env.update(
        OPSBOT_DATABASE_URL=db_url,
        OPSBOT_CONFIG=str(config),
        AWS_ENDPOINT_URL=aws,
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        OPSBOT_SLACK_API_URL=fake.api_url,
    )
    return env


def test_serve_answers_slack_and_healthz_and_logs_json_lines(tmp_path: Path, sqlite_url: str, aws: str) -> None:
    """The CLI's HTTP server acks a signed command, reports health, logs one JSON object per line, stops on SIGTERM."""
    with FakeSlack(TOKEN, SECRET, channels=CHANNELS, users=USERS) as fake:
        proc, url = start_serve(_env(tmp_path, sqlite_url, aws, fake), tmp_path / "serve.log")
        try:
            ack = SlackDriver(fake, url, signing_secret=SECRET).slash_command(
                "/ops", "help", user=REQUESTER, channel=OPS
            )
            assert ack.status == 200 and "opsbot" in ack.json()["text"]
            health = requests.get(url.replace("/slack/events", "/healthz"), timeout=5)
            assert health.status_code == 200 and health.json() == {"status": "ok"}
            assert requests.get(url.replace("/slack/events", "/nope"), timeout=5).status_code == 404
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
    time.sleep(0.2)
    lines = [line for line in (tmp_path / "serve.log").read_text().splitlines() if line.startswith("{")]
    events = [json.loads(line) for line in lines]
    assert any(e["event"] == "slack_request" and e["action"] == "/ops" for e in events)
    assert all("timestamp" in e and "level" in e for e in events)
    assert TOKEN not in (tmp_path / "serve.log").read_text() and SECRET not in (tmp_path / "serve.log").read_text()


def test_socket_mode_without_app_token_is_a_clear_error(tmp_path: Path, sqlite_url: str, aws: str) -> None:
    """--socket needs SLACK_APP_TOKEN and says so instead of failing obscurely."""
    with FakeSlack(TOKEN, SECRET, channels=CHANNELS, users=USERS) as fake:
        result = subprocess.run(
            [sys.executable, "-m", "opsbot.cli", "serve", "--socket"],
            capture_output=True,
            text=True,
            env=_env(tmp_path, sqlite_url, aws, fake),
            timeout=60,
        )
    assert result.returncode == 2 and "SLACK_APP_TOKEN" in result.stderr and "Traceback" not in result.stderr


def _services(tmp_path: Path, db_url: str, aws: str, fake: FakeSlack, **config: Any) -> Any:
    path = tmp_path / "opsbot.yml"
    path.write_text(yaml.safe_dump({**SLACK_CONFIG, **config}))
    settings = Settings(
        database_url=db_url,
        config=path,
        slack_bot_token=TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=fake.api_url,
        aws_endpoint_url=aws,
    )
    return settings, build_services(settings)


def test_worker_runs_engine_loops_and_a_digest_per_channel(tmp_path: Path, sqlite_url: str, aws: str) -> None:
    """Executor and reconciler loops run unless --no-worker; delivery always; one cron digest job per channel."""
    with FakeSlack(TOKEN, SECRET, channels=CHANNELS, users=USERS) as fake:
        settings, svc = _services(tmp_path, sqlite_url, aws, fake)
        worker = start_worker(svc, settings)
        try:
            jobs = {j.id: j for j in worker.scheduler.get_jobs()}
            assert set(jobs) == {"digest:C0DIGEST"} and "hour='9'" in str(jobs["digest:C0DIGEST"].trigger)
            assert [loop.name for loop in worker.loops] == ["executor", "reconciler", "slack-delivery"]
        finally:
            worker.shutdown()
        split = start_worker(svc, settings, engine_jobs=False)
        try:
            assert [loop.name for loop in split.loops] == ["slack-delivery"]
        finally:
            split.shutdown()


def test_an_approval_wakes_the_executor_at_once(tmp_path: Path, sqlite_url: str, aws: str) -> None:
    """With a fallback poll of a minute, an approved intent still starts within a fraction of a second."""
    import time

    from tests.conftest import approve_current, create_source

    create_source(aws)
    with FakeSlack(TOKEN, SECRET, channels=CHANNELS, users=USERS) as fake:
        settings, svc = _services(tmp_path, sqlite_url, aws, fake)
        settings = settings.model_copy(update={"executor_poll_seconds": 60.0, "reconcile_interval_seconds": 60.0})
        worker = start_worker(svc, settings)
        try:
            time.sleep(0.3)  # the loops' first passes are done: from here on only a wake-up starts anything
            params = {"source": "billing-db", "replica": "r1"}
            intent = svc.ops.request("rds.create-replica", params, "prod", REQUESTER)
            approve_current(svc.ops, intent.intent.id, APPROVER)
            started = time.monotonic()
            while svc.ops.get(intent.intent.id).status.value in ("approved",) and time.monotonic() - started < 5:
                time.sleep(0.01)
            assert time.monotonic() - started < 1.0
            assert svc.ops.get(intent.intent.id).status.value != "approved"
        finally:
            worker.shutdown()


def test_bad_digest_cron_is_a_config_error(tmp_path: Path, sqlite_url: str, aws: str) -> None:
    """A digest with an invalid cron expression stops start-up with a message naming the channel."""
    with FakeSlack(TOKEN, SECRET, channels=CHANNELS, users=USERS) as fake:
        settings, svc = _services(
            tmp_path, sqlite_url, aws, fake, digests=[{"channel": "C0DIGEST", "cron": "every morning"}]
        )
        with pytest.raises(ConfigError, match="C0DIGEST"):
            start_worker(svc, settings)
