"""The break-glass CLI: same policy as Slack, clear errors, never a stack trace."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.conftest import CONFIG, create_source


def plan_hash_in(output: str) -> str:
    """The full plan hash a `request` printed."""
    found = re.search(r"plan hash\s+([0-9a-f]{64})", output)
    assert found, output
    return found.group(1)


Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(tmp_path: Path, aws: str) -> Run:
    config = tmp_path / "opsbot.yml"
    config.write_text(yaml.safe_dump(CONFIG))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSBOT_")}
    env.update(OPSBOT_DATABASE_URL=f"sqlite:///{tmp_path / 'o.db'}", OPSBOT_CONFIG=str(config), AWS_ENDPOINT_URL=aws)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "opsbot.cli", *args], env=env, capture_output=True, text=True, timeout=120
        )

    assert run("db", "upgrade").returncode == 0
    return run


def test_cli_refuses_self_approval_and_runs_after_a_peer_approves(cli: Run, aws: str) -> None:
    """The requester's own approval exits 2 with the reason; another approver's approval runs the intent."""
    create_source(aws)
    run = cli
    req = run(
        "request", "rds.create-replica", "source=billing-db", "replica=billing-db-r1", "env=prod", "--actor", "bob"
    )
    assert req.returncode == 0 and "plan hash" in req.stdout
    intent_id = req.stdout.rsplit("opsbot approve", 1)[1].split()[0]
    plan_hash = plan_hash_in(req.stdout)
    own = run("approve", intent_id, "--plan-hash", plan_hash, "--actor", "bob")
    assert own.returncode == 2 and "your own request" in own.stderr and "Traceback" not in own.stderr
    assert run("approve", intent_id, "--plan-hash", plan_hash[:12], "--actor", "erin").returncode == 0
    assert run("reconcile").returncode == 0
    shown = run("intents", "show", intent_id)
    assert "succeeded" in shown.stdout and "replica_id=billing-db-r1" in shown.stdout
    assert "the four answers" in shown.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("request", "rds.create-replica", "source=billing-db", "replica", "env=prod"), "expected key=value"),
        (("request", "rds.nope", "a=b", "env=prod"), "unknown workflow"),
        (("request", "rds.create-replica", "source=billing-db", "replica=r1"), "environment"),
        (("request", "rds.create-replica", "source=billing-db", "replica=r1", "env=qa"), "unknown environment"),
        (("request", "rds.create-replica", "source=billing-db", "env=prod"), "replica: required"),
        (("approve", "does-not-exist", "--plan-hash", "0" * 64), "no intent"),
        (("approve", "does-not-exist"), "say which plan you approve"),
        (("retry", "does-not-exist", "--reason", "x"), "no intent"),
    ],
)
def test_cli_bad_input_gets_a_specific_error_and_changes_nothing(
    cli: Run, aws: str, args: tuple[str, ...], message: str
) -> None:
    """Each malformed command exits 2 with a message naming the problem and leaves the store empty."""
    create_source(aws)
    run = cli
    result = run(*args, "--actor", "alice")
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert "rds.create-replica" not in run("intents", "list").stdout


def test_cli_never_interprets_operator_text_as_markup(cli: Run) -> None:
    """Brackets in an id or reason are printed as typed, not parsed as rich markup (which used to crash)."""
    run = cli
    result = run("intents", "show", "x[/y]")
    assert result.returncode == 2 and "no intent with id 'x[/y]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_schedules_a_start_time_shows_it_and_an_approver_runs_it_now(cli: Run, aws: str) -> None:
    """`at=` keeps an approved intent scheduled (shown by `intents show`); `run-now` by an approver starts it."""
    create_source(aws)
    run = cli
    req = run(
        "request",
        "rds.create-replica",
        "source=billing-db",
        "replica=billing-db-r1",
        "env=prod",
        "at=2099-01-04T02:00Z",
        "--actor",
        "alice",
    )
    assert req.returncode == 0, req.stderr
    intent_id = req.stdout.rsplit("opsbot approve", 1)[1].split()[0]
    assert run("approve", intent_id, "--plan-hash", plan_hash_in(req.stdout), "--actor", "bob").returncode == 0
    assert run("reconcile").returncode == 0
    shown = run("intents", "show", intent_id).stdout
    assert "scheduled: runs at Sun 4 Jan 02:00 UTC, in " in shown and "(2099-01-04T02:00:00Z)" in shown
    refused = run("run-now", intent_id, "--reason", "now", "--actor", "carol")
    assert refused.returncode == 2 and "carol may not run-now" in refused.stderr
    assert run("run-now", intent_id, "--reason", "the replica is needed today", "--actor", "erin").returncode == 0
    assert run("reconcile").returncode == 0
    assert "succeeded" in run("intents", "show", intent_id).stdout
