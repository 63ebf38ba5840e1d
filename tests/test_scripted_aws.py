"""The scripted AWS world: the ports' contracts, the AWS quirks it models, and which calls count as effects."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.scripted_aws import (
    ScriptedIam,
    ScriptedRds,
    ScriptedSecrets,
    add_cluster,
    add_instance,
    add_policy,
    add_role,
    add_secret,
    apply_maintenance,
    instance,
    secret_stages,
    set_iam_lag,
    set_replica_lag,
    set_replication,
    set_unorderable,
)
from conformance.world import Fault, ScriptedWorld
from workflows.errors import AlreadyExists, OutcomeUnknown, PermanentError, TransientError
from workflows.outside import CURRENT, PENDING, PREVIOUS, IamPort, RdsPort, SecretsPort, SecretVersion, StatusInfo

VALUE = {"engine": "postgres", "host": "db.local", "port": 5432, "username": "app", "password": "old-pw"}
NEW = {**VALUE, "password": "new-pw"}
POLICY = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
SERVICE = "monitoring.rds.amazonaws.com"


@pytest.fixture
def world() -> ScriptedWorld:
    return ScriptedWorld()


@pytest.fixture
def rds(world: ScriptedWorld) -> RdsPort:
    return ScriptedRds(world)


@pytest.fixture
def secrets(world: ScriptedWorld) -> SecretsPort:
    return ScriptedSecrets(world)


@pytest.fixture
def iam(world: ScriptedWorld) -> IamPort:
    return ScriptedIam(world)


def _classes(rds: RdsPort, identifier: str, describes: int) -> list[tuple[str, str]]:
    """(status, class) seen by `describes` successive describes."""
    seen = [rds.describe_instance(identifier) for _ in range(describes)]
    return [(i.status, i.instance_class) for i in seen if i is not None]


# RDS instances -------------------------------------------------------------------------------------


def test_created_replica_converges_then_replicates(world: ScriptedWorld, rds: RdsPort) -> None:
    """A replica is creating, then available with `read replication` replicating and a zero lag in CloudWatch."""
    add_instance(world, "billing-db")
    created = rds.create_read_replica(replica_id="r1", source_id="billing-db", instance_class="db.t3.medium", tags={})
    assert created.status == "creating" and created.status_infos == () and rds.replica_lag_seconds("r1") == []
    found = rds.describe_instance("r1")
    assert found is not None and found.status == "available"
    assert found.status_infos == (StatusInfo("read replication", "replicating", True),)
    assert rds.replica_lag_seconds("r1") == [0.0] * 5


def test_a_source_lists_its_replicas(world: ScriptedWorld, rds: RdsPort) -> None:
    """`replicas` names the instances that replicate from this one."""
    add_instance(world, "billing-db")
    add_instance(world, "r1", source_identifier="billing-db")
    found = rds.describe_instance("billing-db")
    assert found is not None and found.replicas == ("r1",)


def test_deleted_instance_goes_deleting_then_away() -> None:
    """A delete is counted once; the instance reads deleting, then is gone (with its metrics)."""
    world = ScriptedWorld(converge_after=1)
    rds = ScriptedRds(world)
    add_instance(world, "r1", source_identifier="billing-db")
    rds.delete_instance("r1")
    found = rds.describe_instance("r1")
    assert found is not None and found.status == "deleting"
    assert rds.describe_instance("r1") is None and rds.replica_lag_seconds("r1") == []
    assert world.effects() == {"delete_instance:r1": 1}


def test_immediate_modify_reads_available_then_modifying_then_the_class() -> None:
    """AWS reports `available` with the class pending first, `modifying` for two describes, then the new class."""
    world = ScriptedWorld(converge_after=1)
    rds = ScriptedRds(world)
    add_instance(world, "billing-db", instance_class="db.t3.medium")
    answer = rds.modify_instance_class("billing-db", "db.r6g.large", apply_immediately=True)
    assert answer.status == "available" and answer.pending == {"DBInstanceClass": "db.r6g.large"}
    assert _classes(rds, "billing-db", 4) == [
        ("available", "db.t3.medium"),
        ("modifying", "db.t3.medium"),
        ("modifying", "db.t3.medium"),
        ("available", "db.r6g.large"),
    ]
    final = rds.describe_instance("billing-db")
    assert final is not None and final.pending == {}
    assert world.effects() == {"modify_instance_class:billing-db": 1}


def test_deferred_modify_waits_for_the_maintenance_window(world: ScriptedWorld, rds: RdsPort) -> None:
    """Without apply_immediately the class stays pending, however often one looks, until maintenance."""
    add_instance(world, "billing-db", instance_class="db.t3.medium")
    rds.modify_instance_class("billing-db", "db.r6g.large", apply_immediately=False)
    assert _classes(rds, "billing-db", 5) == [("available", "db.t3.medium")] * 5
    apply_maintenance(world, "billing-db")
    found = rds.describe_instance("billing-db")
    assert found is not None and found.instance_class == "db.r6g.large" and found.pending == {}


def test_modify_to_the_current_class_changes_nothing(world: ScriptedWorld, rds: RdsPort) -> None:
    """Asking for the class an instance has is accepted, pends nothing and is not an effect."""
    add_instance(world, "billing-db", instance_class="db.t3.medium")
    answer = rds.modify_instance_class("billing-db", "db.t3.medium", apply_immediately=True)
    assert answer.pending == {} and answer.status == "available"
    assert world.effects() == {} and world.calls() == {"modify_instance_class": 1}


def test_resending_a_modify_under_way_is_not_a_second_effect(world: ScriptedWorld, rds: RdsPort) -> None:
    """The same modify again, while AWS still reads available with it pending, changes nothing."""
    add_instance(world, "billing-db", instance_class="db.t3.medium")
    world.fail("modify_instance_class", Fault.LOST_ANSWER)
    with pytest.raises(OutcomeUnknown):
        rds.modify_instance_class("billing-db", "db.r6g.large", apply_immediately=True)
    rds.modify_instance_class("billing-db", "db.r6g.large", apply_immediately=True)
    assert world.effects() == {"modify_instance_class:billing-db": 1}


def test_a_modifying_instance_refuses_another_modify(world: ScriptedWorld, rds: RdsPort) -> None:
    """InvalidDBInstanceState: busy, so transient, and nothing is counted."""
    add_instance(world, "billing-db", status="modifying")
    with pytest.raises(TransientError, match="InvalidDBInstanceState"):
        rds.modify_instance_class("billing-db", "db.r6g.large", apply_immediately=True)
    assert world.effects() == {}


def test_orderable_unless_listed(world: ScriptedWorld, rds: RdsPort) -> None:
    """Every class is orderable except those a test lists."""
    set_unorderable(world, "db.x2g.16xlarge")
    assert rds.is_orderable("postgres", "16.3", "db.r6g.large", "us-east-1a")
    assert not rds.is_orderable("postgres", "16.3", "db.x2g.16xlarge", None)


def test_replication_status_can_be_scripted(world: ScriptedWorld, rds: RdsPort) -> None:
    """set_replication replaces the `read replication` entry, and None removes it."""
    add_instance(world, "r1", source_identifier="billing-db")
    set_replication(world, "r1", "error")
    found = rds.describe_instance("r1")
    assert found is not None and found.status_infos == (StatusInfo("read replication", "error", False),)
    set_replication(world, "r1", None)
    found = rds.describe_instance("r1")
    assert found is not None and found.status_infos == ()


def test_replica_lag_can_be_scripted(world: ScriptedWorld, rds: RdsPort) -> None:
    """A number fills the five datapoints, a list is taken newest first, None leaves no data."""
    set_replica_lag(world, "r1", 12.5)
    assert rds.replica_lag_seconds("r1") == [12.5] * 5
    set_replica_lag(world, "r1", [-1.0, 3.0])
    assert rds.replica_lag_seconds("r1") == [-1.0, 3.0]
    set_replica_lag(world, "r1", None)
    assert rds.replica_lag_seconds("r1") == []


def test_reads_are_not_effects(world: ScriptedWorld, rds: RdsPort) -> None:
    """Describes, lag and orderability are calls, never effects."""
    add_instance(world, "billing-db")
    rds.describe_instance("billing-db")
    rds.replica_lag_seconds("billing-db")
    rds.is_orderable("postgres", "16.3", "db.r6g.large", None)
    assert world.effects() == {} and set(world.calls()) == {"describe_instance", "replica_lag_seconds", "is_orderable"}


# snapshots -----------------------------------------------------------------------------------------


def test_snapshot_is_creating_then_available() -> None:
    """A snapshot reads creating for `converge_after` describes, then available."""
    world = ScriptedWorld(converge_after=2)
    rds = ScriptedRds(world)
    add_instance(world, "billing-db")
    made = rds.create_snapshot("snap-1", "billing-db", {"opsbot:intent": "i-1"})
    assert made.status == "creating" and made.tags == {"opsbot:intent": "i-1"}
    statuses = [s.status if s else None for s in (rds.describe_snapshot("snap-1") for _ in range(3))]
    assert statuses == ["creating", "creating", "available"]
    assert world.effects() == {"create_snapshot:snap-1": 1}


def test_taken_snapshot_id_is_already_exists(world: ScriptedWorld, rds: RdsPort) -> None:
    """DBSnapshotAlreadyExists is AlreadyExists, and the second create is not an effect."""
    add_instance(world, "billing-db")
    rds.create_snapshot("snap-1", "billing-db", {})
    with pytest.raises(AlreadyExists):
        rds.create_snapshot("snap-1", "billing-db", {})
    assert world.effects() == {"create_snapshot:snap-1": 1}


def test_unknown_snapshot_is_none(rds: RdsPort) -> None:
    """Describing a snapshot that does not exist answers None, never "done"."""
    assert rds.describe_snapshot("nope") is None


def test_deleted_snapshot_is_gone(world: ScriptedWorld, rds: RdsPort) -> None:
    """After delete_snapshot the snapshot is not found."""
    add_instance(world, "billing-db")
    rds.create_snapshot("snap-1", "billing-db", {})
    rds.delete_snapshot("snap-1")
    assert rds.describe_snapshot("snap-1") is None and world.effects()["delete_snapshot:snap-1"] == 1


def test_a_busy_instance_refuses_a_snapshot(world: ScriptedWorld, rds: RdsPort) -> None:
    """A snapshot of an instance that is not available is InvalidDBInstanceState: transient."""
    add_instance(world, "billing-db", status="backing-up")
    with pytest.raises(TransientError):
        rds.create_snapshot("snap-1", "billing-db", {})


# clusters ------------------------------------------------------------------------------------------


def test_seeded_cluster_has_its_members(world: ScriptedWorld, rds: RdsPort) -> None:
    """add_cluster creates the members as instances of the cluster, the writer flagged."""
    add_cluster(world, "ledger", "ledger-a", ["ledger-b", "ledger-c"])
    cluster = rds.describe_cluster("ledger")
    member = instance(world, "ledger-b")
    assert cluster is not None and cluster.writer == "ledger-a" and cluster.readers == ("ledger-b", "ledger-c")
    assert member is not None and member["cluster"] == "ledger"


def test_failover_moves_the_writer_after_two_describes(world: ScriptedWorld, rds: RdsPort) -> None:
    """The cluster reads failing-over with the old writer twice, then available with the new one."""
    add_cluster(world, "ledger", "ledger-a", ["ledger-b"])
    rds.failover_cluster("ledger", "ledger-b")
    seen = [rds.describe_cluster("ledger") for _ in range(3)]
    assert [(c.status, c.writer) for c in seen if c] == [
        ("failing-over", "ledger-a"),
        ("failing-over", "ledger-a"),
        ("available", "ledger-b"),
    ]
    assert world.effects() == {"failover_cluster:ledger": 1}


def test_a_failing_over_cluster_refuses_another_failover(world: ScriptedWorld, rds: RdsPort) -> None:
    """InvalidDBClusterStateFault while a failover is under way: transient."""
    add_cluster(world, "ledger", "ledger-a", ["ledger-b"])
    rds.failover_cluster("ledger", "ledger-b")
    with pytest.raises(TransientError, match="InvalidDBClusterStateFault"):
        rds.failover_cluster("ledger", "ledger-b")


def test_failover_to_a_stranger_is_permanent(world: ScriptedWorld, rds: RdsPort) -> None:
    """An instance outside the cluster cannot become its writer."""
    add_cluster(world, "ledger", "ledger-a", ["ledger-b"])
    add_instance(world, "billing-db")
    with pytest.raises(PermanentError, match="not a member"):
        rds.failover_cluster("ledger", "billing-db")


def test_unknown_cluster_is_none(rds: RdsPort) -> None:
    """describe_cluster of a missing cluster answers None."""
    assert rds.describe_cluster("nope") is None


# Secrets Manager -----------------------------------------------------------------------------------


def test_seeded_secret_has_one_current_version(world: ScriptedWorld, secrets: SecretsPort) -> None:
    """add_secret makes one AWSCURRENT version holding the value."""
    version = add_secret(world, "prod/billing", VALUE)
    assert secrets.versions("prod/billing") == [SecretVersion(version, (CURRENT,))]
    assert secrets.get_value("prod/billing") == VALUE


def test_put_pending_adds_a_pending_version(world: ScriptedWorld, secrets: SecretsPort) -> None:
    """The token is the version id; it carries AWSPENDING and the value."""
    add_secret(world, "prod/billing", VALUE)
    assert secrets.put_pending("prod/billing", "tok-1", NEW) == "tok-1"
    assert secrets.get_value("prod/billing", stage=PENDING) == NEW
    assert world.effects() == {"put_pending:prod/billing/tok-1": 1}


def test_put_pending_again_is_a_no_op_not_counted(world: ScriptedWorld, secrets: SecretsPort) -> None:
    """The same token and value again returns the same version and is not a second effect."""
    add_secret(world, "prod/billing", VALUE)
    first = secrets.put_pending("prod/billing", "tok-1", NEW)
    assert secrets.put_pending("prod/billing", "tok-1", NEW) == first
    assert world.effects() == {"put_pending:prod/billing/tok-1": 1} and world.calls()["put_pending"] == 2


def test_put_pending_with_another_value_fails(world: ScriptedWorld, secrets: SecretsPort) -> None:
    """The same token with another value is ResourceExistsException, and the first value stays."""
    add_secret(world, "prod/billing", VALUE)
    secrets.put_pending("prod/billing", "tok-1", NEW)
    with pytest.raises(PermanentError, match="ResourceExistsException") as caught:
        secrets.put_pending("prod/billing", "tok-1", {**VALUE, "password": "CANARY-3391"})
    assert "CANARY" not in str(caught.value) and secrets.get_value("prod/billing", stage=PENDING) == NEW


def test_a_new_pending_version_takes_the_label(world: ScriptedWorld, secrets: SecretsPort) -> None:
    """AWSPENDING moves to the newest put; the older version is left without a label and is not listed."""
    current = add_secret(world, "prod/billing", VALUE)
    secrets.put_pending("prod/billing", "tok-1", NEW)
    secrets.put_pending("prod/billing", "tok-2", {**VALUE, "password": "newer"})
    assert secrets.versions("prod/billing") == [SecretVersion(current, (CURRENT,)), SecretVersion("tok-2", (PENDING,))]
    assert secret_stages(world, "prod/billing")["tok-1"] == []


def test_promote_moves_current_and_labels_previous(world: ScriptedWorld, secrets: SecretsPort) -> None:
    """AWSCURRENT moves to the new version and AWSPREVIOUS to the former current one."""
    old = add_secret(world, "prod/billing", VALUE)
    secrets.put_pending("prod/billing", "tok-1", NEW)
    secrets.promote("prod/billing", "tok-1", old)
    assert secret_stages(world, "prod/billing") == {old: [PREVIOUS], "tok-1": [PENDING, CURRENT]}
    assert secrets.get_value("prod/billing") == NEW and world.effects()["promote:prod/billing"] == 1


def test_promote_sent_twice_fails_the_second_time(world: ScriptedWorld, secrets: SecretsPort) -> None:
    """The old version no longer carries AWSCURRENT, so a blind re-send is refused: observe before promoting."""
    old = add_secret(world, "prod/billing", VALUE)
    secrets.put_pending("prod/billing", "tok-1", NEW)
    secrets.promote("prod/billing", "tok-1", old)
    with pytest.raises(PermanentError, match="InvalidParameterException"):
        secrets.promote("prod/billing", "tok-1", old)
    assert world.effects()["promote:prod/billing"] == 1


def test_remove_pending_takes_the_label_off(world: ScriptedWorld, secrets: SecretsPort) -> None:
    """After remove_pending no version carries AWSPENDING."""
    add_secret(world, "prod/billing", VALUE)
    secrets.put_pending("prod/billing", "tok-1", NEW)
    secrets.remove_pending("prod/billing", "tok-1")
    assert all(PENDING not in v.stages for v in secrets.versions("prod/billing"))
    assert world.effects()["remove_pending:prod/billing/tok-1"] == 1


def test_remove_pending_from_a_version_without_it_fails(world: ScriptedWorld, secrets: SecretsPort) -> None:
    """Removing a label that is not there is refused, as moto does: observe the versions first."""
    current = add_secret(world, "prod/billing", VALUE)
    with pytest.raises(PermanentError):
        secrets.remove_pending("prod/billing", current)


def test_new_password_is_fresh_and_alphanumeric(secrets: SecretsPort) -> None:
    """32 letters and digits, different each call."""
    first, second = secrets.new_password(), secrets.new_password()
    assert len(first) == 32 and first.isalnum() and first != second


def test_new_password_is_never_stored(tmp_path: Path) -> None:
    """The world file never holds a password the scripted Secrets Manager generated."""
    world = ScriptedWorld(tmp_path / "world.json")
    password = ScriptedSecrets(world).new_password()
    assert password not in (tmp_path / "world.json").read_text()


def test_unknown_secret_is_permanent(secrets: SecretsPort) -> None:
    """ResourceNotFoundException: there is nothing to rotate."""
    with pytest.raises(PermanentError, match="ResourceNotFoundException"):
        secrets.versions("nope")


# IAM -----------------------------------------------------------------------------------------------


def test_created_role_is_found_with_its_trust(iam: IamPort) -> None:
    """create_role answers the role; get_role finds it with its trusted service and tags."""
    made = iam.create_role("rds-monitoring", SERVICE, {"opsbot:intent": "i-1"})
    assert iam.get_role("rds-monitoring") == made
    assert made.trusted_services == (SERVICE,) and made.tags == {"opsbot:intent": "i-1"}


def test_created_role_is_missed_while_iam_lags(world: ScriptedWorld, iam: IamPort) -> None:
    """With `iam_lag` set, the first get_role calls after a create answer None."""
    set_iam_lag(world, 2)
    iam.create_role("rds-monitoring", SERVICE, {})
    assert [iam.get_role("rds-monitoring") is not None for _ in range(3)] == [False, False, True]


def test_taken_role_name_is_already_exists(world: ScriptedWorld, iam: IamPort) -> None:
    """Creating a role whose name is taken is AlreadyExists, whoever made it."""
    add_role(world, "rds-monitoring", SERVICE)
    with pytest.raises(AlreadyExists):
        iam.create_role("rds-monitoring", SERVICE, {})
    assert world.effects() == {}


def test_attaching_twice_is_one_effect(world: ScriptedWorld, iam: IamPort) -> None:
    """A second attach of the same policy changes nothing and is not counted."""
    add_policy(world, POLICY)
    iam.create_role("rds-monitoring", SERVICE, {})
    iam.attach_policy("rds-monitoring", POLICY)
    iam.attach_policy("rds-monitoring", POLICY)
    assert iam.attached_policies("rds-monitoring") == [POLICY]
    assert world.effects()[f"attach_policy:rds-monitoring/{POLICY}"] == 1


def test_attaching_an_unknown_policy_is_permanent(world: ScriptedWorld, iam: IamPort) -> None:
    """NoSuchEntity for a policy ARN that does not exist; nothing is attached or counted."""
    iam.create_role("rds-monitoring", SERVICE, {})
    with pytest.raises(PermanentError, match="NoSuchEntity"):
        iam.attach_policy("rds-monitoring", POLICY)
    assert iam.attached_policies("rds-monitoring") == [] and world.effects() == {"create_role:rds-monitoring": 1}


def test_detach_removes_and_again_is_a_no_op(world: ScriptedWorld, iam: IamPort) -> None:
    """Detaching removes the policy; detaching it again changes nothing and is not counted."""
    add_policy(world, POLICY)
    add_role(world, "rds-monitoring", SERVICE, policies=[POLICY])
    iam.detach_policy("rds-monitoring", POLICY)
    iam.detach_policy("rds-monitoring", POLICY)
    assert iam.attached_policies("rds-monitoring") == []
    assert world.effects() == {f"detach_policy:rds-monitoring/{POLICY}": 1}


def test_a_role_with_policies_cannot_be_deleted(world: ScriptedWorld, iam: IamPort) -> None:
    """DeleteConflict: the policies must be detached first."""
    add_policy(world, POLICY)
    add_role(world, "rds-monitoring", SERVICE, policies=[POLICY])
    with pytest.raises(PermanentError, match="DeleteConflict"):
        iam.delete_role("rds-monitoring")


def test_deleted_role_is_gone(world: ScriptedWorld, iam: IamPort) -> None:
    """After delete_role the role is not found."""
    add_role(world, "rds-monitoring", SERVICE)
    iam.delete_role("rds-monitoring")
    assert iam.get_role("rds-monitoring") is None and world.effects() == {"delete_role:rds-monitoring": 1}


def test_policy_exists_from_the_seeded_policies(world: ScriptedWorld, iam: IamPort) -> None:
    """Seeded policies exist, others do not."""
    add_policy(world, POLICY)
    assert iam.policy_exists(POLICY) and not iam.policy_exists("arn:aws:iam::000000000000:policy/nope")


# the world underneath ------------------------------------------------------------------------------


def test_state_survives_in_the_world_file(tmp_path: Path) -> None:
    """Everything the scripted AWS keeps is JSON, so a file-backed world carries it to the next process."""
    world = ScriptedWorld(tmp_path / "world.json")
    add_cluster(world, "ledger", "ledger-a", ["ledger-b"])
    add_secret(world, "prod/billing", VALUE)
    ScriptedRds(world).failover_cluster("ledger", "ledger-b")
    ScriptedSecrets(world).put_pending("prod/billing", "tok-1", NEW)
    again = ScriptedWorld(tmp_path / "world.json")
    assert ScriptedSecrets(again).get_value("prod/billing", stage=PENDING) == NEW
    assert again.effects() == {"failover_cluster:ledger": 1, "put_pending:prod/billing/tok-1": 1}


def test_scripted_faults_apply_to_the_new_calls(world: ScriptedWorld, secrets: SecretsPort) -> None:
    """A lost answer applies the put and counts it; the caller is told the outcome is unknown."""
    add_secret(world, "prod/billing", VALUE)
    world.fail("put_pending", Fault.LOST_ANSWER)
    with pytest.raises(OutcomeUnknown):
        secrets.put_pending("prod/billing", "tok-1", NEW)
    assert secrets.get_value("prod/billing", version_id="tok-1") == NEW
    assert world.effects() == {"put_pending:prod/billing/tok-1": 1}
