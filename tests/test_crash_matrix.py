"""SIGKILL the executor at every crash point of every step, then recover with a new process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from store.db import make_engine
from store.sql import SqlStore
from tests.conftest import CONFIG, create_source, rds_client
from workflows.authoring import VERIFY_STEP, definition_of
from workflows.catalog.rds_create_replica import CreateReplica
from workflows.executor import PHASES, fault_point
from workflows.model import IntentStatus, StepStatus

STEPS = [s.name for s in definition_of(CreateReplica).steps] + [VERIFY_STEP]
POINTS = [fault_point(step, phase) for step in STEPS for phase in PHASES]
VERDICT_POINT = fault_point(STEPS[-1], "after_checkpoint")
LEASE = 1.0


def opsbot(env: dict[str, str], *args: str, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    command = ["-m", "tests.crashing_cli", crash_at] if crash_at else ["-m", "opsbot.cli"]
    return subprocess.run([sys.executable, *command, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def cli_env(tmp_path: Path, aws: str) -> dict[str, str]:
    config = tmp_path / "opsbot.yml"
    config.write_text(yaml.safe_dump(CONFIG))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSBOT_")}
    env.update(
        OPSBOT_DATABASE_URL=f"sqlite:///{tmp_path / 'opsbot.db'}",
        OPSBOT_CONFIG=str(config),
        OPSBOT_LEASE_SECONDS=str(LEASE),
        AWS_ENDPOINT_URL=aws,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    )
    assert opsbot(env, "db", "upgrade").returncode == 0
    return env


@pytest.mark.parametrize("point", POINTS)
def test_crash_at_every_point_recovers_to_exactly_one_replica(point: str, cli_env: dict[str, str], aws: str) -> None:
    """A SIGKILL anywhere leaves a state a fresh process finishes with one replica and observed, audited steps."""
    create_source(aws)
    requested = opsbot(
        cli_env,
        "request",
        "rds.create-replica",
        "source=billing-db",
        "replica=billing-db-r1",
        "env=prod",
        "--actor",
        "alice",
    )
    assert requested.returncode == 0, requested.stderr
    store = SqlStore(make_engine(cli_env["OPSBOT_DATABASE_URL"]))
    with store.transaction() as tx:
        [intent] = tx.list_intents()
    assert opsbot(cli_env, "approve", intent.id, "--plan-hash", intent.plan_hash, "--actor", "bob").returncode == 0

    crashed = opsbot(cli_env, "reconcile", crash_at=point)
    assert crashed.returncode == -signal.SIGKILL, (crashed.returncode, crashed.stderr[-2000:])
    with store.transaction() as tx:
        dead = tx.get_intent(intent.id)
    if point == VERDICT_POINT:
        # The last step's success is committed with the verdict: the crash finds the intent finished.
        assert dead is not None and dead.status is IntentStatus.SUCCEEDED
        with store.transaction() as tx:
            assert [e.kind for e in tx.events(intent.id)].count("executor_lost") == 0
            assert all(s.attempts == 1 for s in tx.steps(intent.id))
        assert [i["DBInstanceIdentifier"] for i in rds_client(aws).describe_db_instances()["DBInstances"]].count(
            "billing-db-r1"
        ) == 1
        return
    assert dead is not None and dead.status is IntentStatus.RUNNING

    time.sleep(LEASE + 0.2)  # the dead executor's lease must lapse before anyone else may act
    recovered = opsbot(cli_env, "reconcile")
    assert recovered.returncode == 0, recovered.stderr[-2000:]

    replicas = [
        i
        for i in rds_client(aws).describe_db_instances()["DBInstances"]
        if i["DBInstanceIdentifier"] == "billing-db-r1"
    ]
    assert len(replicas) == 1
    with store.transaction() as tx:
        final = tx.get_intent(intent.id)
        steps = {s.name: s for s in tx.steps(intent.id)}
        events = tx.events(intent.id)
    assert final is not None and final.status is IntentStatus.SUCCEEDED, final and final.status_reason
    assert all(s.status is StepStatus.SUCCEEDED for s in steps.values())
    step, phase = point.split(":")
    kinds = [(e.kind, e.data.get("step")) for e in events]
    lost = next(e for e in events if e.kind == "executor_lost")
    if phase == "after_checkpoint":
        # The outcome was recorded: the step is replayed, never re-run, and nothing was uncertain.
        assert step not in lost.data["unknown_steps"]
        assert ("step_rerun", step) not in kinds
        assert steps[step].attempts == 1
    else:
        assert lost.data["unknown_steps"] == [step]
        unknown_at = kinds.index(("step_unknown", step))
        resolution = [
            k for k in kinds[unknown_at:] if k in (("step_resolved_by_observation", step), ("step_rerun", step))
        ]
        assert resolution, kinds
    if point == "create_replica:after_effect":
        # The replica existed before the crash: the probe found it and the create was not called again.
        assert ("step_resolved_by_observation", "create_replica") in kinds
        assert steps["create_replica"].attempts == 1
    assert store.verify_audit().ok
