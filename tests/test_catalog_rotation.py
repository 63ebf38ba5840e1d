"""db.rotate-password against Secrets Manager (moto) and a PostgreSQL that really checks passwords (SCRAM)."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
import sqlalchemy as sa
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from structlog.testing import capture_logs

from adapters.aws import BotoAdapters
from conformance.faults import KillAtPoint
from store.db import make_engine
from store.sql import SqlStore
from store.tables import metadata
from tests.conftest import approve_current
from workflows.catalog import build_registry
from workflows.config import parse_config
from workflows.deps import Runtime
from workflows.executor import Executor
from workflows.model import IntentStatus
from workflows.ports import FaultSeam
from workflows.reconciler import Reconciler
from workflows.runtime import NoFaults, SystemClock
from workflows.service import OpsService


class Later:
    """A clock some seconds ahead: a crashed executor's lease has lapsed for it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def now(self) -> Any:
        return SystemClock().now() + timedelta(seconds=self.seconds)


@dataclass
class Rotation:
    role: str
    secret: str
    admin_dsn: str
    db_url: str
    aws: str

    def runtime(self, clock: Any = None, faults: FaultSeam | None = None) -> Runtime:
        database = {"dsn_env": "TEST_SCRAM_DSN", "secrets": {self.role: self.secret}}
        config = {
            "environments": {"prod": {"aws_region": "us-east-1", "databases": {"billing": database}}},
            "roles": {"dba": ["alice"], "dba-lead": ["bob"]},
        }
        return Runtime(
            store=SqlStore(make_engine(self.db_url)),
            registry=build_registry(),
            config=parse_config(config),
            adapters=BotoAdapters(endpoint_url=self.aws),
            clock=clock or SystemClock(),
            faults=faults or NoFaults(),
            lease_seconds=5,
        )

    def request(self, rt: Runtime, strategy: str = "single") -> str:
        ops = OpsService(rt)
        params = {"database": "billing", "role": self.role, "strategy": strategy}
        intent = ops.request("db.rotate-password", params, "prod", "alice").intent
        approve_current(ops, intent.id, "bob")
        return intent.id

    def current(self, stage: str = "AWSCURRENT") -> dict[str, Any]:
        sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=self.aws)
        value: dict[str, Any] = json.loads(
            sm.get_secret_value(SecretId=self.secret, VersionStage=stage)["SecretString"]
        )
        return value

    def stages(self) -> list[list[str]]:
        sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=self.aws)
        versions = sm.list_secret_version_ids(SecretId=self.secret)["Versions"]
        return [v.get("VersionStages", []) for v in versions]

    def logs_in(self, user: str, password: str) -> bool:
        dsn = make_conninfo(self.admin_dsn, user=user, password=password)
        try:
            with psycopg.connect(dsn, connect_timeout=5):
                return True
        except psycopg.OperationalError:
            return False


@pytest.fixture
def rotation(scram_pg_dsn: str, aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> Rotation:
    """A role with a password in a SCRAM cluster, and its secret in Secrets Manager in AWS's RDS format."""
    role, old = f"app_{uuid.uuid4().hex[:8]}", f"old-{uuid.uuid4().hex}"
    with psycopg.connect(scram_pg_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{old}'")
    parts = conninfo_to_dict(scram_pg_dsn)
    secret = f"prod/billing/{role}"
    value = {
        "engine": "postgres",
        "host": parts.get("host", "127.0.0.1"),
        "port": int(str(parts.get("port") or 5432)),
        "username": role,
        "password": old,
        "dbname": parts.get("dbname", "postgres"),
    }
    sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=aws)
    sm.create_secret(Name=secret, SecretString=json.dumps(value))
    monkeypatch.setenv("TEST_SCRAM_DSN", scram_pg_dsn)
    return Rotation(role, secret, scram_pg_dsn, sqlite_url, aws)


def drive(rt: Runtime, rounds: int = 3) -> None:
    for _ in range(rounds):
        Reconciler(rt).reconcile_due()
        Executor(rt, f"test-{os.getpid()}").run_until_idle()


def test_a_rotation_runs_and_the_old_password_is_refused(rotation: Rotation) -> None:
    """createSecret, setSecret, testSecret, finishSecret: the database and AWSCURRENT agree, nothing pending."""
    old = rotation.current()["password"]
    rt = rotation.runtime()
    intent_id = rotation.request(rt)
    drive(rt)
    assert OpsService(rt).get(intent_id).status is IntentStatus.SUCCEEDED
    new = rotation.current()
    assert new["password"] != old and rotation.logs_in(rotation.role, new["password"])
    assert not rotation.logs_in(rotation.role, old)
    assert not any("AWSPENDING" in stages for stages in rotation.stages())
    assert rotation.current("AWSPREVIOUS")["password"] == old


def _killed_rotation(rotation: Rotation, intent_id: str) -> None:
    rt = rotation.runtime(faults=KillAtPoint("set_password:after_effect"))
    Executor(rt, "doomed").run_until_idle()
    os._exit(0)


def test_a_rotation_killed_after_alter_role_recovers_to_agreement(rotation: Rotation) -> None:
    """SIGKILL after ALTER ROLE, before the stage move: recovery reuses the pending password and finishes."""
    old = rotation.current()["password"]
    intent_id = rotation.request(rotation.runtime())
    child = multiprocessing.get_context("fork").Process(target=_killed_rotation, args=(rotation, intent_id))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    assert rotation.current()["password"] == old  # AWSCURRENT not moved yet, while the database already changed
    recovered = rotation.runtime(clock=Later(10))
    drive(recovered)
    assert OpsService(recovered).get(intent_id).status is IntentStatus.SUCCEEDED
    new = rotation.current()["password"]
    assert rotation.logs_in(rotation.role, new) and not rotation.logs_in(rotation.role, old)
    assert not any("AWSPENDING" in stages for stages in rotation.stages())
    assert len(rotation.stages()) == 2  # one new version: the pending one was found and reused, never a second


def test_two_rotations_in_a_row_both_succeed(rotation: Rotation) -> None:
    """No dangling AWSPENDING: the second rotation starts clean and ends like the first."""
    rt = rotation.runtime()
    for _ in range(2):
        intent_id = rotation.request(rt)
        drive(rt)
        assert OpsService(rt).get(intent_id).status is IntentStatus.SUCCEEDED
    assert rotation.logs_in(rotation.role, rotation.current()["password"])


def test_alternating_rotation_never_refuses_a_client_using_awscurrent(rotation: Rotation) -> None:
    """A client logging in again and again with whatever AWSCURRENT holds is never refused, over two rotations."""
    refused: list[str] = []
    logins = 0
    stop = threading.Event()

    def client() -> None:
        nonlocal logins
        while not stop.is_set():
            value = rotation.current()
            logins += 1
            if not rotation.logs_in(value["username"], value["password"]):
                refused.append(value["username"])

    reader = threading.Thread(target=client, daemon=True)
    reader.start()
    try:
        rt = rotation.runtime()
        users = []
        for _ in range(2):
            intent_id = rotation.request(rt, strategy="alternating")
            drive(rt)
            assert OpsService(rt).get(intent_id).status is IntentStatus.SUCCEEDED
            users.append(rotation.current()["username"])
    finally:
        stop.set()
        reader.join(10)
    assert users == [f"{rotation.role}_clone", rotation.role]
    assert logins > 0 and refused == []


def test_the_new_password_reaches_no_log_no_table_and_no_audit_event(rotation: Rotation) -> None:
    """A canary search for the generated password in everything opsbot wrote and logged."""
    rt = rotation.runtime()
    with capture_logs() as logs:
        intent_id = rotation.request(rt)
        drive(rt)
    assert OpsService(rt).get(intent_id).status is IntentStatus.SUCCEEDED
    password = rotation.current()["password"]
    engine = make_engine(rotation.db_url)
    with engine.connect() as conn:
        dumped = [str(row) for table in metadata.sorted_tables for row in conn.execute(sa.select(table))]
    assert dumped and not any(password in row for row in dumped)
    assert password not in json.dumps(logs, default=str)


def test_db_rotate_password_runs_from_the_cli(rotation: Rotation, tmp_path: Path) -> None:
    """`opsbot request db.rotate-password …`, approve, reconcile: the database and AWSCURRENT agree."""
    import subprocess
    import sys

    import yaml

    from tests.test_catalog_aws import run_from_the_cli

    old = rotation.current()["password"]
    database = {"dsn_env": "TEST_SCRAM_DSN", "secrets": {rotation.role: rotation.secret}}
    config = tmp_path / "cli.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "environments": {"prod": {"aws_region": "us-east-1", "databases": {"billing": database}}},
                "roles": {"dba": ["alice"], "dba-lead": ["bob"]},
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSBOT_")}
    env.update(OPSBOT_DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}", OPSBOT_CONFIG=str(config))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "opsbot.cli", *args], env=env, capture_output=True, text=True, timeout=120
        )

    assert cli("db", "upgrade").returncode == 0
    status = run_from_the_cli(cli, "db.rotate-password", "database=billing", f"role={rotation.role}")
    assert status == "succeeded"
    new = rotation.current()["password"]
    assert rotation.logs_in(rotation.role, new) and not rotation.logs_in(rotation.role, old)
