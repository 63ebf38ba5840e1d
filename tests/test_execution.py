"""Executor and reconciler behaviour under the failure model: duplicates, stale plans, timeouts, convergence."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError

from adapters.aws import BotoAdapters
from devstack.moto_replication import ReplicationSimulator
from tests.conftest import approve_current, create_source, rds_client
from tests.fakes import Script, ScriptedAdapters
from workflows.deps import Runtime
from workflows.errors import PermanentError, PermissionDenied, TransientError
from workflows.executor import Executor
from workflows.model import IntentStatus, StepStatus, Verdict
from workflows.reconciler import Reconciler
from workflows.runtime import FrozenClock
from workflows.service import OpsService
from workflows.states import Action

PARAMS = {"source": "billing-db", "replica": "billing-db-r1"}


def replicas(endpoint: str) -> list[dict[str, Any]]:
    return [
        i
        for i in rds_client(endpoint).describe_db_instances()["DBInstances"]
        if i["DBInstanceIdentifier"] == "billing-db-r1"
    ]


def approved(rt: Runtime, key: str | None = None) -> str:
    ops = OpsService(rt)
    intent = ops.request("rds.create-replica", dict(PARAMS), "prod", "alice", key).intent
    approve_current(ops, intent.id, "bob")
    return intent.id


def kinds(rt: Runtime, intent_id: str) -> list[str]:
    with rt.store.transaction() as tx:
        return [e.kind for e in tx.events(intent_id)]  # type: ignore[arg-type]


def test_same_idempotency_key_twice_gives_one_intent_and_one_execution(runtime: Runtime, aws: str) -> None:
    """A CI retry of the same request finds the first intent; the replica is created once."""
    create_source(aws)
    ops = OpsService(runtime)
    first = ops.request("rds.create-replica", dict(PARAMS), "prod", "alice", "ci-run-42")
    second = ops.request("rds.create-replica", dict(PARAMS), "prod", "alice", "ci-run-42")
    assert first.created and not second.created
    assert first.intent.id == second.intent.id
    approve_current(ops, first.intent.id, "bob")
    executor = Executor(runtime, "test")
    assert len(executor.run_until_idle()) == 1
    assert (
        ops.request("rds.create-replica", dict(PARAMS), "prod", "alice", "ci-run-42").intent.status
        is IntentStatus.SUCCEEDED
    )
    assert executor.run_until_idle() == []
    assert len(ops.list()) == 1 and len(replicas(aws)) == 1
    assert kinds(runtime, first.intent.id).count("duplicate_request") == 2


def test_identical_request_without_key_is_deduplicated(runtime: Runtime, aws: str) -> None:
    """An operator rerunning the same command gets the existing intent, not a second one."""
    create_source(aws)
    ops = OpsService(runtime)
    a = ops.request("rds.create-replica", dict(PARAMS), "prod", "alice")
    b = ops.request("rds.create-replica", dict(PARAMS), "prod", "carol")
    assert b.intent.id == a.intent.id and not b.created


@pytest.mark.parametrize("change", ["modified", "deleted"])
def test_changed_world_after_approval_needs_reapproval(change: str, runtime: Runtime, aws: str) -> None:
    """If the source changed or vanished since the plan, nothing runs and the intent asks for a new approval."""
    create_source(aws)
    intent_id = approved(runtime)
    client = rds_client(aws)
    if change == "modified":
        client.modify_db_instance(
            DBInstanceIdentifier="billing-db", DBInstanceClass="db.r6g.large", ApplyImmediately=True
        )
    else:
        client.delete_db_instance(DBInstanceIdentifier="billing-db", SkipFinalSnapshot=True)
    [intent] = Executor(runtime, "test").run_once()
    assert intent.status is IntentStatus.NEEDS_REAPPROVAL
    assert "changed" in (intent.status_reason or "")
    assert replicas(aws) == []
    view = OpsService(runtime).show(intent_id)
    assert view.steps == ()
    assert Action.APPROVE in view.guidance.action_names


def test_modified_source_gives_a_new_plan_hash_that_old_approvals_do_not_cover(runtime: Runtime, aws: str) -> None:
    """The new plan has a new hash; the earlier approval does not carry over to it."""
    create_source(aws)
    intent_id = approved(runtime)
    old_hash = OpsService(runtime).show(intent_id).intent.plan_hash
    rds_client(aws).modify_db_instance(
        DBInstanceIdentifier="billing-db", DBInstanceClass="db.r6g.large", ApplyImmediately=True
    )
    [intent] = Executor(runtime, "test").run_once()
    assert intent.plan_hash != old_hash
    approve_current(OpsService(runtime), intent_id, "bob")
    [done] = Executor(runtime, "test").run_once()
    assert done.status is IntentStatus.SUCCEEDED and len(replicas(aws)) == 1


def test_expired_approval_does_not_execute(runtime: Runtime, aws: str, clock: FrozenClock) -> None:
    """An approval past its expiry is not enough to start."""
    create_source(aws)
    approved(runtime)
    clock.advance(runtime.approval_ttl + 1)
    [intent] = Executor(runtime, "test").run_once()
    assert intent.status is IntentStatus.NEEDS_REAPPROVAL and "expired" in (intent.status_reason or "")
    assert replicas(aws) == []


def test_read_timeout_after_create_reached_aws_is_resolved_by_probe(runtime: Runtime, aws: str) -> None:
    """The create reached moto but the answer was lost: the step goes unknown and a probe, not a retry, resolves it."""
    create_source(aws)
    fired: list[int] = []

    def lose_the_answer(**_: Any) -> None:
        if not fired:
            fired.append(1)
            raise ReadTimeoutError(endpoint_url=aws)

    def hook(client: Any) -> None:
        client.meta.events.register("after-call.rds.CreateDBInstanceReadReplica", lose_the_answer)

    rt = Runtime(**{**runtime.__dict__, "adapters": BotoAdapters(endpoint_url=aws, client_hook=hook)})
    intent_id = approved(rt)
    [intent] = Executor(rt, "test").run_once()
    assert fired and intent.status is IntentStatus.SUCCEEDED, intent.status_reason
    log = kinds(rt, intent_id)
    assert log.index("step_unknown") < log.index("step_resolved_by_observation")
    assert "step_rerun" not in log
    create = OpsService(rt).show(intent_id).steps[0]
    assert create.attempts == 1 and create.external_ids["replica_id"] == "billing-db-r1"
    assert len(replicas(aws)) == 1


def test_converging_replica_is_rechecked_until_available(runtime: Runtime, aws: str, clock: FrozenClock) -> None:
    """An accepted create is not success: the intent converges, and succeeds only once the replica is available."""
    create_source(aws)
    script = Script(statuses=["creating", "creating", "backing-up"])
    rt = Runtime(**{**runtime.__dict__, "adapters": ScriptedAdapters(runtime.adapters, script)})
    intent_id = approved(rt)
    [intent] = Executor(rt, "test").run_once()
    assert intent.status is IntentStatus.CONVERGING
    reconciler = Reconciler(rt)
    assert reconciler.reconcile_due() == []  # not due yet
    for _ in range(2):  # still creating, then backing-up
        clock.advance(600)
        [c] = reconciler.reconcile_due()
        assert c.verdict is Verdict.CONVERGING
    clock.advance(600)
    [c] = reconciler.reconcile_due()
    assert c.verdict is Verdict.RETRYABLE  # converged: handed back to the executor
    [done] = Executor(rt, "test").run_once()
    assert done.status is IntentStatus.SUCCEEDED, done.status_reason
    assert "converging" in kinds(rt, intent_id)


def test_convergence_past_its_window_blocks_and_resume_reopens_it(
    runtime: Runtime, aws: str, clock: FrozenClock
) -> None:
    """A replica stuck creating past the window is blocked with guidance; resume gives it a fresh window."""
    create_source(aws)
    script = Script(statuses=["creating"] * 3)
    rt = Runtime(**{**runtime.__dict__, "adapters": ScriptedAdapters(runtime.adapters, script)})
    intent_id = approved(rt)
    Executor(rt, "test").run_once()
    clock.advance(3601)
    [c] = Reconciler(rt).reconcile_due()
    assert c.verdict is Verdict.BLOCKED and "did not converge" in c.reason
    view = OpsService(rt).show(intent_id)
    assert {Action.RESUME, Action.CANCEL, Action.MARK_DONE, Action.COMPENSATE} <= set(view.guidance.action_names)
    assert any("converging" in u for u in view.guidance.uncertain)
    asked = OpsService(rt).resume(intent_id, "bob", "AWS support says it is nearly done")
    assert asked.status is IntentStatus.NEEDS_REAPPROVAL  # an hour on, the approval has expired: approve again
    assert "expired" in (asked.status_reason or "")
    approve_current(OpsService(rt), intent_id, "erin")
    [intent] = Executor(rt, "test").run_once()
    assert intent.status is IntentStatus.CONVERGING  # a fresh window, not blocked again at once
    clock.advance(60)
    Reconciler(rt).reconcile_due()
    [done] = Executor(rt, "test").run_once()
    assert done.status is IntentStatus.SUCCEEDED


def test_transient_errors_are_retried_by_policy(runtime: Runtime, aws: str) -> None:
    """Throttling twice then success: retried in place, one replica."""
    create_source(aws)
    script = Script(errors={"create_read_replica": [TransientError("Throttling"), TransientError("Throttling")]})
    rt = Runtime(**{**runtime.__dict__, "adapters": ScriptedAdapters(runtime.adapters, script)})
    approved(rt)
    [intent] = Executor(rt, "test").run_once()
    assert intent.status is IntentStatus.SUCCEEDED
    assert script.calls["create_read_replica"] == 3 and len(replicas(aws)) == 1


def test_permanent_failure_then_operator_retry_succeeds(runtime: Runtime, aws: str) -> None:
    """A permanent error fails the intent with guidance; Retry runs the failed step again."""
    create_source(aws)
    script = Script(
        errors={"create_read_replica": [PermanentError("InvalidParameterCombination", guidance="pick a class")]}
    )
    rt = Runtime(**{**runtime.__dict__, "adapters": ScriptedAdapters(runtime.adapters, script)})
    intent_id = approved(rt)
    [failed] = Executor(rt, "test").run_once()
    assert failed.status is IntentStatus.FAILED
    view = OpsService(rt).show(intent_id)
    assert view.steps[0].status is StepStatus.FAILED
    assert Action.RETRY in view.guidance.action_names
    OpsService(rt).retry(intent_id, "alice", "limit raised")
    [done] = Executor(rt, "test").run_once()
    assert done.status is IntentStatus.SUCCEEDED and len(replicas(aws)) == 1


def test_existing_replica_not_ours_is_unsafe(runtime: Runtime, aws: str) -> None:
    """A replica id taken after the plan by something that is not this intent is never adopted."""
    create_source(aws)
    runtime = Runtime(**{**runtime.__dict__, "adapters": ScriptedAdapters(runtime.adapters, Script())})
    intent_id = approved(runtime)
    rds_client(aws).create_db_instance_read_replica(
        DBInstanceIdentifier="billing-db-r1",
        SourceDBInstanceIdentifier="billing-db",
        Tags=[{"Key": "opsbot:managed", "Value": "true"}, {"Key": "opsbot:intent", "Value": "someone-else"}],
    )
    # The world changed (the replica appeared): the gate refuses first; approve the new plan and try again.
    Executor(runtime, "test").run_once()
    approve_current(OpsService(runtime), intent_id, "bob")
    [intent] = Executor(runtime, "test").run_once()
    assert intent.status is IntentStatus.UNSAFE
    assert "not ours" in (intent.status_reason or "")
    assert replicas(aws)[0]["TagList"] == [
        {"Key": "opsbot:managed", "Value": "true"},
        {"Key": "opsbot:intent", "Value": "someone-else"},
    ]


def test_compensate_deletes_only_our_replica(runtime: Runtime, aws: str) -> None:
    """After success, compensation is a plan of its own: proposed, approved by a third person, then run."""
    create_source(aws)
    intent_id = approved(runtime)
    Executor(runtime, "test").run_once()
    ops = OpsService(runtime)
    with pytest.raises(PermissionDenied, match="someone else must compensate"):
        ops.compensate(intent_id, "alice", "wrong region")
    proposed = ops.compensate(intent_id, "bob", "wrong region")
    assert proposed.status is IntentStatus.PENDING_APPROVAL and proposed.plan["purpose"] == "compensation"
    assert Executor(runtime, "test").run_once() == [] and len(replicas(aws)) == 1  # nothing runs unapproved
    for who in ("alice", "bob"):  # neither the requester nor the proposer approves it
        with pytest.raises(PermissionDenied):
            approve_current(ops, intent_id, who)
    approve_current(ops, intent_id, "erin")
    [intent] = Executor(runtime, "test").run_once()
    assert intent.status is IntentStatus.COMPENSATED
    assert all(r["DBInstanceStatus"] == "deleting" for r in replicas(aws)) or replicas(aws) == []


def test_lost_executor_is_resumed_by_the_reconciler(runtime: Runtime, aws: str, clock: FrozenClock) -> None:
    """An intent whose executor stopped renewing its lease is handed to another executor."""
    create_source(aws)
    intent_id = approved(runtime)
    [claimed] = Executor(runtime, "dead").claim(1)
    assert claimed.status is IntentStatus.RUNNING
    assert Reconciler(runtime).reconcile_due() == []
    clock.advance(runtime.lease_seconds + 1)
    [c] = Reconciler(runtime).reconcile_due()
    assert c.verdict is Verdict.RETRYABLE and "lease" in c.reason
    [done] = Executor(runtime, "alive").run_once()
    assert done.status is IntentStatus.SUCCEEDED
    assert "executor_lost" in kinds(runtime, intent_id)


def test_recorded_step_name_differing_from_the_code_is_unsafe(runtime: Runtime, aws: str) -> None:
    """A checkpoint recorded under another step name is an error to surface, never a guess to replay."""
    from workflows.model import IntentId, StepRecord

    create_source(aws)
    intent_id = approved(runtime)
    [claimed] = Executor(runtime, "x").claim(1)
    with runtime.store.transaction() as tx:
        tx.insert_step(
            StepRecord(IntentId(intent_id), 1, "create_cluster", StepStatus.SUCCEEDED, "t", 1, runtime.clock.now())
        )
    intent = Executor(runtime, "x").drive(claimed)
    assert intent.status is IntentStatus.UNSAFE and "create_cluster" in (intent.status_reason or "")
    assert replicas(aws) == []


def test_unknown_outcome_stays_unknown_with_stable_version_until_observable(
    runtime: Runtime, aws: str, clock: FrozenClock
) -> None:
    """While probes cannot see AWS the intent stays UNKNOWN, re-checked with backoff, its version unchanged."""
    from workflows.errors import OutcomeUnknown

    create_source(aws)
    script = Script(errors={"create_read_replica": [OutcomeUnknown("connection reset after send")]})
    rt = Runtime(**{**runtime.__dict__, "adapters": ScriptedAdapters(runtime.adapters, script)})
    intent_id = approved(rt)
    script.describe_outage_after = script.calls["describe_instance"] + 2  # the gate's two looks, then an outage
    [intent] = Executor(rt, "x").run_once()
    assert intent.status is IntentStatus.UNKNOWN
    version = intent.version
    for _ in range(3):
        clock.advance(400)
        [c] = Reconciler(rt).reconcile_due()
        assert c.verdict is Verdict.UNKNOWN
    assert OpsService(rt).show(intent_id).intent.version == version
    view = OpsService(rt).show(intent_id)
    assert Action.RESUME in view.guidance.action_names and Action.MARK_DONE in view.guidance.action_names
    script.describe_outage_after = -1
    clock.advance(400)
    [c] = Reconciler(rt).reconcile_due()
    assert c.verdict is Verdict.RETRYABLE
    [done] = Executor(rt, "x").run_once()
    assert done.status is IntentStatus.SUCCEEDED and len(replicas(aws)) == 1


def test_an_internal_error_parks_the_intent_instead_of_looping(runtime: Runtime, aws: str) -> None:
    """A bug under a running intent (here: its environment removed from the config) blocks it with an id."""
    from tests.conftest import CONFIG
    from workflows.config import parse_config

    create_source(aws)
    intent_id = approved(runtime)
    broken = Runtime(
        **{**runtime.__dict__, "config": parse_config({**CONFIG, "environments": {"qa": {}}, "policies": {}})}
    )
    [intent] = Executor(broken, "x").run_once()
    assert intent.status is IntentStatus.BLOCKED and "correlation id" in (intent.status_reason or "")
    assert intent.lease_token is None
    assert Reconciler(broken).reconcile_due() == []
    assert "internal_error" in kinds(runtime, intent_id)


def test_compensating_an_old_intent_gets_a_fresh_time_budget(runtime: Runtime, aws: str, clock: FrozenClock) -> None:
    """An operator action restarts the workflow's timeout budget: a day-old replica can still be compensated."""
    create_source(aws)
    intent_id = approved(runtime)
    Executor(runtime, "x").run_once()
    clock.advance(24 * 3600)
    OpsService(runtime).compensate(intent_id, "bob", "not needed any more")
    approve_current(OpsService(runtime), intent_id, "erin")
    [intent] = Executor(runtime, "x").run_once()
    assert intent.status is IntentStatus.COMPENSATED, intent.status_reason


def test_reconciler_does_not_take_a_lease_renewed_after_it_looked(
    runtime: Runtime, aws: str, clock: FrozenClock
) -> None:
    """A heartbeat that lands between the reconciler's read and its takeover keeps the lease with its owner."""
    from datetime import timedelta

    from workflows.model import Lease, Move

    create_source(aws)
    approved(runtime)
    [claimed] = Executor(runtime, "slow").claim(1)
    clock.advance(runtime.lease_seconds + 1)
    with runtime.store.transaction() as tx:
        [due] = tx.due_for_reconcile(clock.now(), 10)
    assert claimed.lease_token and claimed.lease_owner
    runtime.store.renew_lease(
        Lease(claimed.id, claimed.lease_owner, claimed.lease_token, clock.now()),
        clock.now() + timedelta(seconds=runtime.lease_seconds),
    )
    from workflows.errors import ConcurrentModification

    with pytest.raises(ConcurrentModification), runtime.store.transaction() as tx:
        tx.take_over(due, Move(IntentStatus.APPROVED, "executor lost"), clock.now())
    assert OpsService(runtime).show(claimed.id).intent.lease_owner == "slow"


def test_the_same_request_after_the_first_is_over_is_a_new_intent(runtime: Runtime, aws: str) -> None:
    """A rerun dedupes while the first is in flight; after it was denied, the same command plans anew."""
    create_source(aws)
    ops = OpsService(runtime)
    first = ops.request("rds.create-replica", dict(PARAMS), "prod", "alice").intent
    assert ops.request("rds.create-replica", dict(PARAMS), "prod", "alice").intent.id == first.id
    ops.deny(first.id, "bob", "wrong week")
    again = ops.request("rds.create-replica", dict(PARAMS), "prod", "alice")
    assert again.created and again.intent.id != first.id
    assert ops.request("rds.create-replica", dict(PARAMS), "prod", "alice").intent.id == again.intent.id
    explicit = ops.request("rds.create-replica", dict(PARAMS), "prod", "alice", "ci-7").intent
    ops.deny(explicit.id, "bob", "no")
    assert ops.request("rds.create-replica", dict(PARAMS), "prod", "alice", "ci-7").intent.id == explicit.id


def test_a_replica_is_done_only_when_replication_is_reported_healthy(
    runtime: Runtime, aws: str, clock: FrozenClock, replication: ReplicationSimulator
) -> None:
    """No `read replication` status: converging; a lag over the limit: converging; replication in error: failed."""
    from datetime import UTC, datetime, timedelta

    import boto3
    from moto.rds.models import rds_backends

    create_source(aws)
    replication.hold("billing-db-r1")
    try:
        intent_id = approved(runtime)
        [waiting] = Executor(runtime, "test").run_once()
        assert waiting.status is IntentStatus.CONVERGING and "read replication not reported" in str(
            waiting.status_reason
        )
        replica: Any = rds_backends["123456789012"]["us-east-1"].databases["billing-db-r1"]
        # moto's model has no such field; its serializer reads it when set
        replica.status_infos = [{"StatusType": "read replication", "Status": "replicating", "Normal": True}]
        now = datetime.now(UTC)
        boto3.client("cloudwatch", region_name="us-east-1", endpoint_url=aws).put_metric_data(
            Namespace="AWS/RDS",
            MetricData=[
                {
                    "MetricName": "ReplicaLag",
                    "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": "billing-db-r1"}],
                    "Timestamp": now - timedelta(minutes=m),
                    "Value": 120.0,
                }
                for m in (3, 2, 1)
            ],
        )
        clock.advance(120)
        [c] = Reconciler(runtime).reconcile_due()
        assert c.status is IntentStatus.CONVERGING and "replica lag not yet healthy (120s" in c.reason
        replica.status_infos = [{"StatusType": "read replication", "Status": "error", "Normal": False}]
        clock.advance(300)
        Reconciler(runtime).reconcile_due()
        Executor(runtime, "test").run_until_idle()
        failed = OpsService(runtime).get(intent_id)
        assert failed.status is IntentStatus.FAILED and "read replication is in error" in str(failed.status_reason)
    finally:
        replication.release("billing-db-r1")
