"""The whole control plane in-process: request, approval, execution, guidance."""

from __future__ import annotations

import pytest

from tests.conftest import create_source, rds_client
from workflows.deps import Runtime
from workflows.errors import InvalidInput, PermissionDenied, UnknownWorkflow
from workflows.executor import Executor
from workflows.model import IntentStatus, StepStatus
from workflows.service import OpsService
from workflows.states import Action

PARAMS = {"source": "billing-db", "replica": "billing-db-r1", "instance_class": "db.t3.large"}


def request_and_approve(rt: Runtime) -> str:
    ops = OpsService(rt)
    intent = ops.request("rds.create-replica", dict(PARAMS), "prod", "alice").intent
    ops.approve(intent.id, "bob", intent.plan_hash)
    return intent.id


def test_happy_path_creates_one_tagged_replica_and_succeeds_with_evidence(runtime: Runtime, aws: str) -> None:
    """An approved request runs every step, verifies its postconditions and records the replica's ids."""
    create_source(aws)
    intent_id = request_and_approve(runtime)
    [done] = Executor(runtime, "test").run_once()
    assert done.status is IntentStatus.SUCCEEDED, done.status_reason
    view = OpsService(runtime).show(intent_id)
    assert [s.status for s in view.steps] == [StepStatus.SUCCEEDED] * 3
    assert view.steps[0].external_ids["replica_id"] == "billing-db-r1"
    assert view.steps[2].output["evidence"]["tagged"]["ok"] is True
    replicas = [
        i
        for i in rds_client(aws).describe_db_instances()["DBInstances"]
        if i["DBInstanceIdentifier"] == "billing-db-r1"
    ]
    assert len(replicas) == 1
    assert replicas[0]["DBInstanceClass"] == "db.t3.large"
    assert "billing-db-r1" in " ".join(view.guidance.changed)
    assert Action.COMPENSATE in view.guidance.action_names


def test_unknown_workflow_is_refused_with_the_known_ones(runtime: Runtime) -> None:
    """A typo in the workflow name names the workflows that exist."""
    with pytest.raises(UnknownWorkflow, match=r"rds\.create-replica"):
        OpsService(runtime).request("rds.create-replika", dict(PARAMS), "prod", "alice")


def test_invalid_identifier_is_refused_per_field(runtime: Runtime, aws: str) -> None:
    """Each bad field is named with what was expected; nothing is stored."""
    create_source(aws)
    with pytest.raises(InvalidInput) as info:
        OpsService(runtime).request(
            "rds.create-replica", {"source": "billing db; drop", "replica": "x--y"}, "prod", "alice"
        )
    assert "source:" in str(info.value) and "replica:" in str(info.value)
    assert OpsService(runtime).list() == []


def test_requester_without_role_is_refused_and_audited(runtime: Runtime, aws: str) -> None:
    """Someone outside the request roles cannot ask, and the refusal is in the audit log."""
    create_source(aws)
    with pytest.raises(PermissionDenied, match="dba"):
        OpsService(runtime).request("rds.create-replica", dict(PARAMS), "prod", "mallory")
    with runtime.store.transaction() as tx:
        assert [e.kind for e in tx.events()] == ["request_refused"]
