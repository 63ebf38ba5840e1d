"""Shared fixtures: moto over HTTP, a real PostgreSQL, fresh stores, a runtime with a movable clock."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
import sqlalchemy as sa
import stamina
from moto.server import ThreadedMotoServer

from adapters.aws import BotoAdapters
from devstack.moto_replication import ReplicationSimulator
from store.db import make_engine
from store.migrate import upgrade
from store.sql import SqlStore
from store.tables import metadata
from workflows.catalog import build_registry
from workflows.config import parse_config
from workflows.deps import Runtime
from workflows.model import Intent
from workflows.runtime import FrozenClock
from workflows.service import OpsService

ROLES: dict[str, list[str]] = {"dba": ["alice", "bob", "carol"], "dba-lead": ["bob", "erin"]}
CONFIG: dict[str, Any] = {
    "environments": {"prod": {"aws_region": "us-east-1", "databases": {"billing": {"dsn_env": "BILLING_DSN"}}}},
    "roles": ROLES,
    "policies": {"rds.create-replica": {"request": ["dba"], "approve": ["dba-lead"], "approvals": 1}},
}


@pytest.fixture(autouse=True)
def _no_retry_waits() -> Iterator[None]:
    """Retries still happen as the policy says, without sleeping between them."""
    with stamina.set_testing(True, attempts=10, cap=True):
        yield


@pytest.fixture(autouse=True)
def _fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(scope="session")
def replication() -> Iterator[ReplicationSimulator]:
    """moto reports neither StatusInfos nor ReplicaLag: replicas look replicating unless a test holds them."""
    simulator = ReplicationSimulator().start()
    yield simulator
    simulator.stop()


@pytest.fixture(scope="session")
def moto_endpoint(replication: ReplicationSimulator) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _host, port = server.get_host_and_port()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A clean moto account per test, reachable at AWS_ENDPOINT_URL."""
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    yield moto_endpoint


def rds_client(endpoint: str) -> Any:
    return boto3.client(
        "rds",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def create_source(endpoint: str, identifier: str = "billing-db") -> None:
    rds_client(endpoint).create_db_instance(
        DBInstanceIdentifier=identifier,
        Engine="postgres",
        DBInstanceClass="db.t3.medium",
        MasterUsername="admin",
        MasterUserPassword="not-a-real-password",
        AllocatedStorage=20,
    )


# --- PostgreSQL ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _pg_bin() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not versions:
        pytest.skip("no PostgreSQL binaries on this machine and OPSBOT_TEST_DATABASE_URL is not set")
    return versions[-1]


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """OPSBOT_TEST_DATABASE_URL when set; otherwise a throwaway cluster run as the postgres user."""
    url = os.environ.get("OPSBOT_TEST_DATABASE_URL")
    if url:
        yield url
        return
    bin_dir, port = _pg_bin(), _free_port()
    data = Path(tempfile.mkdtemp(prefix="opsbot-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    subprocess.run(
        _as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
        check=True,
        capture_output=True,
    )
    subprocess.run(
        _as_postgres(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-w",
                "-l",
                str(data / "log"),
                "-o",
                f"-p {port} -k {data} -h 127.0.0.1 -c fsync=on",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]), capture_output=True
        )
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A database of our own on the server, migrated to head with Alembic."""
    name = f"opsbot_test_{uuid.uuid4().hex[:8]}"
    admin = make_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = pg_server_url.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def _truncate(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        names = ", ".join(t.name for t in reversed(metadata.sorted_tables))
        conn.exec_driver_sql(f"TRUNCATE {names} CASCADE")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'opsbot.db'}"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every store test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_url")
        return
    url = request.getfixturevalue("pg_url")
    engine = make_engine(url)
    _truncate(engine)
    engine.dispose()
    yield url


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    engine = make_engine(db_url)
    yield SqlStore(engine)
    engine.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def config() -> Any:
    return parse_config(CONFIG)


@pytest.fixture
def runtime(store: SqlStore, aws: str, clock: FrozenClock, config: Any) -> Runtime:
    return Runtime(
        store=store,
        registry=build_registry(),
        config=config,
        adapters=BotoAdapters(endpoint_url=aws),
        clock=clock,
        lease_seconds=30,
    )


def approve_current(ops: OpsService, intent_id: str, actor: str) -> Intent:
    """Approve whatever plan the intent has now (the test's approver has just reviewed it)."""
    return ops.approve(intent_id, actor, ops.get(intent_id).plan_hash)


@pytest.fixture(scope="session")
def scram_pg_cluster() -> Iterator[Any]:
    """A throwaway cluster that demands SCRAM-SHA-256 passwords over TCP and logs every statement."""
    import importlib

    # Imported by name: mypy, given tests/*.py by path (no tests/__init__.py), would meet the module twice.
    clusters = importlib.import_module("tests.pg_clusters")
    cluster = clusters.start_scram_cluster(_pg_bin(), _free_port(), _as_postgres)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def scram_pg_dsn(scram_pg_cluster: Any) -> str:
    """The admin DSN (with its password) of the SCRAM cluster."""
    return str(scram_pg_cluster.admin_dsn)


@pytest.fixture(scope="session")
def scram_pg_log(scram_pg_cluster: Any) -> Path:
    """The SCRAM cluster's server log, where every statement is written."""
    return Path(scram_pg_cluster.log)


@pytest.fixture
def owned_pg() -> Iterator[Any]:
    """A PostgreSQL cluster of this test's own, which it may stop and start again."""
    import importlib

    clusters = importlib.import_module("tests.pg_clusters")
    cluster = clusters.start_trust_cluster(_pg_bin(), _free_port(), _as_postgres)
    try:
        yield cluster
    finally:
        cluster.stop()
