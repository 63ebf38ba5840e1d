"""The AWS workflows of the catalog: from the CLI against moto, and the resource lock between two resizes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from conformance import ScriptedAdapters, ScriptedWorld
from conformance.scripted_aws import add_instance, instance
from store.db import make_engine
from store.sql import SqlStore
from tests.conftest import approve_current, create_source, rds_client
from workflows.catalog import build_registry
from workflows.config import parse_config
from workflows.deps import Runtime
from workflows.executor import Executor
from workflows.model import IntentStatus
from workflows.reconciler import Reconciler
from workflows.runtime import FrozenClock
from workflows.service import OpsService

CONFIG: dict[str, Any] = {
    "environments": {"prod": {"aws_region": "us-east-1"}},
    "roles": {"dba": ["alice"], "dba-lead": ["bob", "erin"], "platform": ["alice"], "platform-lead": ["bob", "erin"]},
}
Cli = Callable[..., subprocess.CompletedProcess[str]]
READ_S3 = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}'


@pytest.fixture
def cli(tmp_path: Path, aws: str) -> Cli:
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


def run_from_the_cli(cli: Cli, workflow: str, *pairs: str, approvers: tuple[str, ...] = ("bob",)) -> str:
    """request, approve (by each approver, with the hash it printed), reconcile until over; the final status."""
    requested = cli("request", workflow, *pairs, "env=prod", "--actor", "alice")
    assert requested.returncode == 0, requested.stderr
    intent_id = requested.stdout.rsplit("opsbot approve", 1)[1].split()[0]
    found = re.search(r"plan hash\s+([0-9a-f]{64})", requested.stdout)
    assert found, requested.stdout
    for who in approvers:
        approved = cli("approve", intent_id, "--plan-hash", found.group(1), "--actor", who)
        assert approved.returncode == 0, approved.stderr
    status = ""
    for _ in range(5):
        assert cli("reconcile").returncode == 0
        shown = cli("intents", "show", intent_id).stdout
        status = re.search(r"intent \w+\s+(\w+)", shown).group(1)  # type: ignore[union-attr]
        if status in ("succeeded", "failed", "blocked", "unsafe", "unknown", "needs_reapproval"):
            break
    return status


def test_rds_resize_runs_from_the_cli(cli: Cli, aws: str) -> None:
    """rds.resize on moto: planned, approved, the class applied and verified."""
    create_source(aws)
    assert run_from_the_cli(cli, "rds.resize", "instance=billing-db", "instance_class=db.r6g.large") == "succeeded"
    [db] = rds_client(aws).describe_db_instances(DBInstanceIdentifier="billing-db")["DBInstances"]
    assert db["DBInstanceClass"] == "db.r6g.large"


def test_rds_snapshot_runs_from_the_cli(cli: Cli, aws: str) -> None:
    """rds.snapshot on moto: one snapshot, named after the intent and tagged with it."""
    create_source(aws)
    assert run_from_the_cli(cli, "rds.snapshot", "instance=billing-db") == "succeeded"
    snaps = rds_client(aws).describe_db_snapshots(DBInstanceIdentifier="billing-db", SnapshotType="manual")[
        "DBSnapshots"
    ]
    assert [s["DBSnapshotIdentifier"].startswith("opsbot-billing-db-") for s in snaps] == [True]


def test_iam_create_role_runs_from_the_cli(cli: Cli, aws: str) -> None:
    """iam.create-role on moto: the role exists, tagged by the intent, with the policy attached."""
    iam = boto3.client("iam", region_name="us-east-1", endpoint_url=aws)
    arn = iam.create_policy(PolicyName="etl-read", PolicyDocument=READ_S3)["Policy"]["Arn"]
    status = run_from_the_cli(
        cli,
        "iam.create-role",
        "role=etl-reader",
        "trusted_service=glue.amazonaws.com",
        f"policy_arn={arn}",
        approvers=("erin",),
    )
    assert status == "succeeded"
    attached = iam.list_attached_role_policies(RoleName="etl-reader")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [arn]


def test_rds_rebuild_replica_runs_from_the_cli_with_two_approvers(cli: Cli, aws: str) -> None:
    """rds.rebuild-replica on moto: irreversible, so two approvers; the replica comes back with the same id."""
    create_source(aws)
    rds = rds_client(aws)
    rds.create_db_instance_read_replica(DBInstanceIdentifier="billing-db-r1", SourceDBInstanceIdentifier="billing-db")
    status = run_from_the_cli(cli, "rds.rebuild-replica", "replica=billing-db-r1", approvers=("bob", "erin"))
    assert status == "succeeded"
    [replica] = rds.describe_db_instances(DBInstanceIdentifier="billing-db-r1")["DBInstances"]
    assert any(t["Key"] == "opsbot:intent" for t in replica.get("TagList", []))


def test_rds_resize_cluster_runs_from_the_cli(cli: Cli, aws: str) -> None:
    """rds.resize-cluster on moto: every member resized, the writer moved to a former reader."""
    rds = rds_client(aws)
    rds.create_db_cluster(
        DBClusterIdentifier="analytics",
        Engine="aurora-postgresql",
        MasterUsername="admin",
        MasterUserPassword="not-a-real-password",
    )
    for member in ("analytics-1", "analytics-2"):
        rds.create_db_instance(
            DBInstanceIdentifier=member,
            DBClusterIdentifier="analytics",
            Engine="aurora-postgresql",
            DBInstanceClass="db.r5.large",
        )
    status = run_from_the_cli(cli, "rds.resize-cluster", "cluster=analytics", "instance_class=db.r6g.large")
    assert status == "succeeded"
    members = rds.describe_db_clusters(DBClusterIdentifier="analytics")["DBClusters"][0]["DBClusterMembers"]
    classes = {
        m["DBInstanceIdentifier"]: rds.describe_db_instances(DBInstanceIdentifier=m["DBInstanceIdentifier"])[
            "DBInstances"
        ][0]["DBInstanceClass"]
        for m in members
    }
    assert set(classes.values()) == {"db.r6g.large"}


def test_two_resizes_of_one_instance_never_modify_it_while_the_first_converges(sqlite_url: str) -> None:
    """Approved together: the second waits for the first's lock, and modifies nothing until the first is done."""
    world = ScriptedWorld(converge_after=3)
    add_instance(world, "billing-db")
    clock = FrozenClock()
    rt = Runtime(
        store=SqlStore(make_engine(sqlite_url)),
        registry=build_registry(),
        config=parse_config(CONFIG),
        adapters=ScriptedAdapters(world),
        clock=clock,
    )
    ops = OpsService(rt)
    first = ops.request("rds.resize", {"instance": "billing-db", "instance_class": "db.r6g.large"}, "prod", "alice")
    second = ops.request("rds.resize", {"instance": "billing-db", "instance_class": "db.r6g.xlarge"}, "prod", "alice")
    for intent in (first.intent, second.intent):
        approve_current(ops, intent.id, "bob")
    executor, reconciler = Executor(rt, "one"), Reconciler(rt)
    seen: list[tuple[str, str]] = []
    for _ in range(20):
        executor.run_until_idle()
        a, b = ops.get(first.intent.id), ops.get(second.intent.id)
        seen.append((a.status.value, b.status.value))
        modifies = world.effects().get("modify_instance_class:billing-db", 0)
        if a.status is not IntentStatus.SUCCEEDED:
            assert modifies <= 1 and b.status is IntentStatus.WAITING, seen
        if a.status.terminal and b.status.terminal:
            break
        clock.advance(60)
        reconciler.reconcile_due()
    assert ("converging", "waiting") in seen
    assert ops.get(first.intent.id).status is IntentStatus.SUCCEEDED
    # The world moved under the second plan (the class changed): it asks to be approved again, never runs blind.
    assert ops.get(second.intent.id).status is IntentStatus.NEEDS_REAPPROVAL
    assert world.effects()["modify_instance_class:billing-db"] == 1
    assert instance(world, "billing-db")["instance_class"] == "db.r6g.large"  # type: ignore[index]
