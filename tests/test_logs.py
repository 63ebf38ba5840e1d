"""Logs worth reading: one JSON object per line, libraries at WARNING unless asked, and an idle serve is quiet."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
import structlog
import yaml
from apscheduler.schedulers.background import BackgroundScheduler

from fakeslack import FakeSlack
from tests.slack_harness import CHANNELS, SECRET, SLACK_CONFIG, TOKEN, USERS
from workflows.errors import ConfigError
from workflows.logs import LIBRARY_LEVEL, configure_logging, parse_levels


@pytest.fixture(autouse=True)
def _logging_restored(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test configures logging for the process; put back what was there."""
    root = logging.getLogger()
    handlers, level, config = root.handlers[:], root.level, structlog.get_config()
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    yield
    root.handlers, root.level = handlers, level
    structlog.configure(**config)
    logging.captureWarnings(False)


def events(stream: StringIO) -> list[dict[str, object]]:
    """Every line written, parsed: a line that is not one JSON object fails the test."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def run_scheduler_briefly() -> None:
    """APScheduler running a job every 50 ms for half a second: it logs "Running job" and "executed" at INFO."""
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(lambda: None, "interval", seconds=0.05, id="tick")
    scheduler.start()
    time.sleep(0.5)
    scheduler.shutdown(wait=True)


def test_the_default_level_is_ours_at_info_and_libraries_at_warning() -> None:
    """`INFO` lets our events through at INFO; libraries only at WARNING."""
    levels = parse_levels("INFO")
    assert (levels.own, levels.libraries, dict(levels.named)) == (logging.INFO, LIBRARY_LEVEL, {})
    assert parse_levels("debug").libraries == logging.DEBUG
    named = parse_levels("WARNING, apscheduler=INFO,botocore=debug")
    assert named.own == logging.WARNING and dict(named.named) == {"apscheduler": logging.INFO, "botocore": 10}


@pytest.mark.parametrize(("spec", "message"), [("LOUD", "'LOUD' is not a level"), ("INFO,apscheduler", "logger=LEVEL")])
def test_a_bad_level_is_a_config_error_naming_the_setting(spec: str, message: str) -> None:
    """An unknown level or a malformed logger override is refused with the setting's name and the expected form."""
    with pytest.raises(ConfigError, match="OPSBOT_LOG_LEVEL") as raised:
        parse_levels(spec)
    assert message in str(raised.value)


def test_library_info_lines_are_dropped_at_the_default_level() -> None:
    """APScheduler's "Running job ... executed successfully" lines and botocore's INFO say nothing; our events stay."""
    stream = StringIO()
    configure_logging("INFO", stream)
    run_scheduler_briefly()
    for name in ("botocore.credentials", "urllib3.connectionpool", "waitress", "slack_bolt.App", "alembic"):
        logging.getLogger(name).info("chatter from %s", name)
    structlog.get_logger("opsbot.worker").info("digest_queued", channel="C0OPS")
    logging.getLogger("waitress.queue").warning("Task queue depth is 5")
    assert [(e["event"], e.get("logger")) for e in events(stream)] == [
        ("digest_queued", None),
        ("Task queue depth is 5", "waitress.queue"),
    ]


def test_a_named_library_is_heard_at_its_own_level() -> None:
    """`INFO,apscheduler=INFO` brings APScheduler's job lines back, as JSON, and nothing else of the libraries."""
    stream = StringIO()
    configure_logging("INFO,apscheduler=INFO", stream)
    run_scheduler_briefly()
    logging.getLogger("botocore.endpoint").info("not asked for")
    found = events(stream)
    assert any(str(e["event"]).startswith("Running job") for e in found)
    assert any("executed successfully" in str(e["event"]) for e in found)
    assert {e["logger"] for e in found} <= {"apscheduler.scheduler", "apscheduler.executors.default"}


def test_debug_turns_every_library_on() -> None:
    """`DEBUG` is everything: our debug events and the libraries' debug lines."""
    stream = StringIO()
    configure_logging("DEBUG", stream)
    logging.getLogger("urllib3.connectionpool").debug("Starting new HTTPS connection")
    structlog.get_logger("opsbot").debug("claim_skipped")
    assert [e["event"] for e in events(stream)] == ["Starting new HTTPS connection", "claim_skipped"]


def test_warnings_and_thread_crashes_are_json_lines_too() -> None:
    """A Python warning and an exception that kills a thread each come out as one JSON object, not bare text."""
    stream = StringIO()
    configure_logging("INFO", stream)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("this API is going away", DeprecationWarning, stacklevel=1)

    def crash() -> None:
        raise RuntimeError("boom")

    thread = threading.Thread(target=crash, name="doomed")
    thread.start()
    thread.join()
    warned, crashed = events(stream)
    assert warned["logger"] == "py.warnings" and "this API is going away" in str(warned["event"])
    assert crashed["event"] == "thread_crashed" and crashed["thread"] == "doomed"
    assert "RuntimeError: boom" in str(crashed["exception"])


# --- a real `opsbot serve`, left alone ------------------------------------------------------------------------


def _serve(env: dict[str, str]) -> tuple[subprocess.Popen[str], list[tuple[float, str]]]:
    """`opsbot serve` on a free port; every stdout line is collected with the time it arrived."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "opsbot.cli", "serve", "--host", "127.0.0.1", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[tuple[float, str]] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.monotonic(), line.rstrip("\n")))

    threading.Thread(target=read, daemon=True).start()
    return proc, lines


def test_an_idle_serve_writes_nothing(tmp_path: Path, db_url: str, aws: str) -> None:
    """Once it is listening, `opsbot serve` with nothing to do writes no line for seconds, even with its loops
    polling several times a second; what it wrote at start-up and at shutdown is JSON, with nothing from APScheduler."""
    config = tmp_path / "opsbot.yml"
    config.write_text(yaml.safe_dump(SLACK_CONFIG))  # includes a daily digest: APScheduler runs in the process
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSBOT_", "SLACK_"))}
    env.update(
        OPSBOT_DATABASE_URL=db_url,
        OPSBOT_CONFIG=str(config),
        AWS_ENDPOINT_URL=aws,
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        OPSBOT_EXECUTOR_POLL_SECONDS="0.1",
        OPSBOT_RECONCILE_INTERVAL_SECONDS="0.2",
    )
    with FakeSlack(TOKEN, SECRET, channels=CHANNELS, users=USERS) as fake:
        env["OPSBOT_SLACK_API_URL"] = fake.api_url
        proc, lines = _serve(env)
        try:
            deadline = time.monotonic() + 60
            while not any("listening on" in line for _, line in lines):
                assert proc.poll() is None and time.monotonic() < deadline, lines
                time.sleep(0.05)
            listening = time.monotonic()
            time.sleep(4)
            idle = [line for at, line in lines if at > listening]
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
    assert idle == []
    written = [line for _, line in lines if not re.fullmatch(r"listening on http://\S+", line)]
    parsed = [json.loads(line) for line in written]  # each line is one JSON object
    assert {e["event"] for e in parsed} >= {"slack_connected", "serving"}
    assert not [e for e in parsed if str(e.get("logger", "")).startswith("apscheduler")], parsed
    assert all(e["level"] != "debug" for e in parsed)


def test_a_bad_log_level_stops_a_command_with_the_setting_named(tmp_path: Path) -> None:
    """OPSBOT_LOG_LEVEL=LOUD makes a command exit 2 with one line naming the setting, not a traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSBOT_")}
    env.update(OPSBOT_LOG_LEVEL="LOUD", OPSBOT_DATABASE_URL=f"sqlite:///{tmp_path / 'o.db'}")
    result = subprocess.run(
        [sys.executable, "-m", "opsbot.cli", "intents", "list"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "OPSBOT_LOG_LEVEL='LOUD'" in result.stderr
    assert "Traceback" not in result.stderr
