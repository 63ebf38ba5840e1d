"""The AWS adapters against moto over HTTP: the ports' contracts, error classification, no blind re-sends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from adapters.aws import (
    BotoAdapters,
    IamAdapter,
    RdsAdapter,
    SecretsAdapter,
    classify,
    trust_policy,
    trusted_services,
)
from tests.conftest import create_source, rds_client
from workflows.errors import AlreadyExists, OutcomeUnknown, PermanentError, TransientError
from workflows.outside import CURRENT, PENDING, PREVIOUS, AdapterFactory, SecretVersion


def _client_error(code: str, message: str = "m") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "CreateDBInstanceReadReplica")


def test_errors_map_onto_the_retry_contract() -> None:
    """Throttling is transient, a lost answer is outcome-unknown, a bad request permanent, a taken id its own kind."""
    assert isinstance(classify(_client_error("Throttling"), "op"), TransientError)
    assert isinstance(classify(ConnectTimeoutError(endpoint_url="http://x"), "op"), TransientError)
    assert isinstance(classify(EndpointConnectionError(endpoint_url="http://x"), "op"), TransientError)
    assert isinstance(classify(ReadTimeoutError(endpoint_url="http://x"), "op"), OutcomeUnknown)
    assert isinstance(classify(_client_error("DBInstanceAlreadyExists"), "op"), AlreadyExists)
    assert isinstance(classify(_client_error("InvalidParameterCombination"), "op"), PermanentError)


def test_error_messages_are_redacted() -> None:
    """A credential echoed in an AWS error message does not survive classification."""
    err = classify(_client_error("InvalidParameterValue", "bad url postgresql://u:CANARY-31@h/db"), "op")
    assert "CANARY-31" not in str(err)


def test_reads_retry_in_botocore_but_writes_are_sent_once(aws: str) -> None:
    """Standard retry mode everywhere; mutating calls get a single attempt so a lost answer is observed, not resent."""
    adapter = BotoAdapters(endpoint_url=aws).rds("us-east-1")
    reads, writes = adapter._reads, adapter._writes
    assert reads.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert writes.meta.config.retries == {"mode": "standard", "total_max_attempts": 1}


# helpers -------------------------------------------------------------------------------------------

REGION = "us-east-1"
TOKEN_1, TOKEN_2 = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
RDS_SECRET = {"engine": "postgres", "host": "db.local", "port": 5432, "username": "app", "password": "old-pw"}


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service, region_name=REGION, endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def _rds(endpoint: str) -> RdsAdapter:
    return BotoAdapters(endpoint_url=endpoint).rds(REGION)


def _secrets(endpoint: str) -> SecretsAdapter:
    return BotoAdapters(endpoint_url=endpoint).secrets(REGION)


def _iam(endpoint: str) -> IamAdapter:
    return BotoAdapters(endpoint_url=endpoint).iam()


def _secret(endpoint: str, value: str, name: str = "prod/billing") -> str:
    """A secret with one AWSCURRENT version; returns that version's id."""
    _client("secretsmanager", endpoint).create_secret(Name=name, SecretString=value)
    [version] = _secrets(endpoint).versions(name)
    return version.version_id


def _aurora(endpoint: str, cluster: str = "ledger") -> None:
    rds = rds_client(endpoint)
    rds.create_db_cluster(
        DBClusterIdentifier=cluster, Engine="aurora-postgresql", MasterUsername="admin", MasterUserPassword="x" * 12
    )
    for member in (f"{cluster}-a", f"{cluster}-b"):
        rds.create_db_instance(
            DBInstanceIdentifier=member,
            DBClusterIdentifier=cluster,
            Engine="aurora-postgresql",
            DBInstanceClass="db.r5.large",
        )


def _lag(endpoint: str, instance: str, value: float, seconds_ago: float) -> None:
    _client("cloudwatch", endpoint).put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": "ReplicaLag",
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": instance}],
                "Value": value,
                "Timestamp": datetime.now(UTC) - timedelta(seconds=seconds_ago),
            }
        ],
    )


def _policy(endpoint: str, name: str = "opsbot-monitoring") -> str:
    """A customer-managed policy (moto loads AWS-managed ones only when its process starts with a setting)."""
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "rds:Describe*", "Resource": "*"}]}
    arn: str = _client("iam", endpoint).create_policy(PolicyName=name, PolicyDocument=json.dumps(document))["Policy"][
        "Arn"
    ]
    return arn


# the factory ---------------------------------------------------------------------------------------


def test_boto_adapters_is_an_adapter_factory() -> None:
    """BotoAdapters is what the engine asks for (mypy checks the assignment; this checks the methods exist)."""
    factory: AdapterFactory = BotoAdapters(endpoint_url="http://127.0.0.1:1")
    assert {"rds", "secrets", "iam", "database"} <= set(dir(factory))


def test_clients_are_cached_per_service_and_region(aws: str) -> None:
    """Adapters are cheap: each asks the factory for the same clients rather than building new ones."""
    factory = BotoAdapters(endpoint_url=aws)
    assert factory.secrets(REGION)._reads is factory.secrets(REGION)._reads
    assert factory.rds(REGION)._reads is not factory.rds("eu-west-1")._reads


def test_secrets_and_iam_writes_are_sent_once(aws: str) -> None:
    """Secrets Manager and IAM mutating calls get one attempt, reads three, as RDS's do."""
    factory = BotoAdapters(endpoint_url=aws)
    for adapter in (factory.secrets(REGION), factory.iam()):
        assert adapter._reads.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}
        assert adapter._writes.meta.config.retries == {"mode": "standard", "total_max_attempts": 1}
    assert factory.iam()._writes.meta.region_name == "us-east-1"


# classification ------------------------------------------------------------------------------------


def test_a_busy_instance_is_transient() -> None:
    """InvalidDBInstanceState and InvalidDBClusterStateFault mean "busy, try later", with a delay."""
    for code in ("InvalidDBInstanceState", "InvalidDBInstanceStateFault", "InvalidDBClusterStateFault"):
        err = classify(_client_error(code), "modify_db_instance")
        assert isinstance(err, TransientError) and err.delay, code


def test_every_exists_code_is_already_exists() -> None:
    """RDS, IAM and Secrets Manager spell "it exists" differently; each is AlreadyExists."""
    codes = (
        "DBSnapshotAlreadyExists",
        "DBSnapshotAlreadyExistsFault",
        "EntityAlreadyExists",
        "ResourceExistsException",
    )
    for code in codes:
        assert isinstance(classify(_client_error(code), "op"), AlreadyExists), code


# RDS -----------------------------------------------------------------------------------------------


def test_describe_instance_reports_what_workflows_check(aws: str) -> None:
    """Version, zone, Multi-AZ, pending changes, maintenance window and port come through."""
    create_source(aws)
    found = _rds(aws).describe_instance("billing-db")
    assert found is not None
    assert found.engine_version and found.availability_zone == "us-east-1a" and found.multi_az is False
    assert found.pending == {} and found.status_infos == () and found.cluster is None
    assert found.maintenance_window and found.port == 5432


def test_describe_missing_instance_is_none(aws: str) -> None:
    """DBInstanceNotFound is an answer (no such instance), not an error."""
    assert _rds(aws).describe_instance("nope") is None


def test_a_source_lists_its_replicas(aws: str) -> None:
    """ReadReplicaDBInstanceIdentifiers becomes `replicas`, the replica names its source."""
    create_source(aws)
    rds = _rds(aws)
    replica = rds.create_read_replica(
        replica_id="billing-db-r1", source_id="billing-db", instance_class="db.t3.medium", tags={}
    )
    source = rds.describe_instance("billing-db")
    assert replica.source_identifier == "billing-db"
    assert source is not None and source.replicas == ("billing-db-r1",)


def test_delete_instance_removes_it(aws: str) -> None:
    """delete_instance skips the final snapshot and the instance is gone (moto deletes at once)."""
    create_source(aws)
    rds = _rds(aws)
    rds.delete_instance("billing-db")
    assert rds.describe_instance("billing-db") is None


def test_modify_instance_class_is_applied_at_once_by_moto(aws: str) -> None:
    """The modify answers with the instance; moto applies the class at once and reports nothing pending."""
    create_source(aws)
    changed = _rds(aws).modify_instance_class("billing-db", "db.r5.large", apply_immediately=True)
    assert changed.identifier == "billing-db" and changed.instance_class == "db.r5.large" and changed.pending == {}


def test_modify_of_a_missing_instance_is_permanent(aws: str) -> None:
    """There is nothing to retry when the instance does not exist."""
    with pytest.raises(PermanentError, match="DBInstanceNotFound"):
        _rds(aws).modify_instance_class("nope", "db.r5.large", apply_immediately=True)


def test_an_offered_class_is_orderable(aws: str) -> None:
    """A class RDS lists for the engine version is orderable (moto has the Aurora PostgreSQL catalogue)."""
    assert _rds(aws).is_orderable("aurora-postgresql", "11.9", "db.r5.large", None)


def test_an_unknown_class_is_not_orderable(aws: str) -> None:
    """The class is matched by the adapter, since moto ignores the DBInstanceClass filter."""
    assert not _rds(aws).is_orderable("aurora-postgresql", "11.9", "db.nonsense.large", None)


def test_orderable_is_checked_in_the_zone(aws: str) -> None:
    """With a zone, the class must be offered in that zone."""
    rds = _rds(aws)
    assert rds.is_orderable("aurora-postgresql", "11.9", "db.r5.large", "us-east-1b")
    assert not rds.is_orderable("aurora-postgresql", "11.9", "db.r5.large", "eu-west-1a")


def test_an_engine_without_a_catalogue_leaves_the_check_to_the_modify(aws: str) -> None:
    """moto lists no option at all for postgres: the catalogue cannot tell, so the class is let through (with a
    warning) for ModifyDBInstance to refuse; an engine with a catalogue that lacks the class is not orderable."""
    assert _rds(aws).is_orderable("postgres", "16.3", "db.t3.medium", None)
    assert not _rds(aws).is_orderable("aurora-postgresql", "11.9", "db.nope.large", None)


def test_an_endpoint_without_the_action_leaves_the_check_to_the_modify(aws: str) -> None:
    """InvalidAction means the check cannot be made: orderable, so that ModifyDBInstance itself decides."""

    def unsupported(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "InvalidAction", "Message": "no"}}, "DescribeOrderableDBInstanceOptions")

    def hook(client: Any) -> None:
        client.meta.events.register("before-call.rds.DescribeOrderableDBInstanceOptions", unsupported)

    assert BotoAdapters(endpoint_url=aws, client_hook=hook).rds(REGION).is_orderable("postgres", "16.3", "db.x", None)


def test_snapshot_is_created_described_and_deleted(aws: str) -> None:
    """A snapshot carries its instance and tags; once deleted it is not there (None, never "done")."""
    create_source(aws)
    rds = _rds(aws)
    made = rds.create_snapshot("snap-1", "billing-db", {"opsbot:intent": "i-1"})
    found = rds.describe_snapshot("snap-1")
    assert made.instance == "billing-db" and made.tags == {"opsbot:intent": "i-1"} and made.arn
    assert found is not None and found.status == "available"
    rds.delete_snapshot("snap-1")
    assert rds.describe_snapshot("snap-1") is None


def test_taken_snapshot_id_is_already_exists(aws: str) -> None:
    """DBSnapshotAlreadyExists is AlreadyExists."""
    create_source(aws)
    rds = _rds(aws)
    rds.create_snapshot("snap-1", "billing-db", {})
    with pytest.raises(AlreadyExists):
        rds.create_snapshot("snap-1", "billing-db", {})


def test_describe_missing_snapshot_is_none(aws: str) -> None:
    """DBSnapshotNotFound is None."""
    assert _rds(aws).describe_snapshot("nope") is None


def test_describe_cluster_names_its_writer(aws: str) -> None:
    """DBClusterMembers and IsClusterWriter become members, writer and readers."""
    _aurora(aws)
    cluster = _rds(aws).describe_cluster("ledger")
    assert cluster is not None and cluster.engine == "aurora-postgresql"
    assert cluster.writer == "ledger-a" and cluster.readers == ("ledger-b",)


def test_cluster_members_name_their_cluster(aws: str) -> None:
    """An Aurora member's DBClusterIdentifier becomes `cluster`."""
    _aurora(aws)
    member = _rds(aws).describe_instance("ledger-b")
    assert member is not None and member.cluster == "ledger"


def test_failover_moves_the_writer(aws: str) -> None:
    """FailoverDBCluster targets the named reader (moto moves the writer at once; AWS takes a while)."""
    _aurora(aws)
    rds = _rds(aws)
    rds.failover_cluster("ledger", "ledger-b")
    cluster = rds.describe_cluster("ledger")
    assert cluster is not None and cluster.writer == "ledger-b"


def test_describe_missing_cluster_is_none(aws: str) -> None:
    """DBClusterNotFoundFault is None."""
    assert _rds(aws).describe_cluster("nope") is None


def test_replica_lag_is_newest_first(aws: str) -> None:
    """The one-minute maxima of the last five minutes come back newest first."""
    _lag(aws, "billing-db-r1", 3.0, seconds_ago=150)
    _lag(aws, "billing-db-r1", 7.0, seconds_ago=20)
    assert _rds(aws).replica_lag_seconds("billing-db-r1") == [7.0, 3.0]


def test_replica_lag_of_minus_one_is_kept(aws: str) -> None:
    """-1 (RDS cannot measure the lag) is returned as reported, for the workflow to call unhealthy."""
    _lag(aws, "billing-db-r1", -1, seconds_ago=20)
    assert _rds(aws).replica_lag_seconds("billing-db-r1") == [-1.0]


def test_no_replica_lag_data_is_empty(aws: str) -> None:
    """Without a datapoint in the last five minutes there is no lag to report."""
    _lag(aws, "billing-db-r1", 2.0, seconds_ago=900)
    assert _rds(aws).replica_lag_seconds("billing-db-r1") == []


# Secrets Manager -----------------------------------------------------------------------------------


def test_get_value_parses_the_rds_json(aws: str) -> None:
    """The current value is the secret's JSON object."""
    _secret(aws, json.dumps(RDS_SECRET))
    assert _secrets(aws).get_value("prod/billing", stage=CURRENT) == RDS_SECRET


def test_put_pending_adds_a_pending_version_under_the_token(aws: str) -> None:
    """The version id is the token, labelled AWSPENDING, holding the value."""
    _secret(aws, json.dumps(RDS_SECRET))
    secrets = _secrets(aws)
    assert secrets.put_pending("prod/billing", TOKEN_1, {**RDS_SECRET, "password": "new"}) == TOKEN_1
    assert SecretVersion(TOKEN_1, (PENDING,)) in secrets.versions("prod/billing")
    assert secrets.get_value("prod/billing", version_id=TOKEN_1)["password"] == "new"


def test_put_pending_again_with_the_same_value_is_a_no_op(aws: str) -> None:
    """The same token and value again returns the same version and adds none."""
    _secret(aws, json.dumps(RDS_SECRET))
    secrets = _secrets(aws)
    first = secrets.put_pending("prod/billing", TOKEN_1, {**RDS_SECRET, "password": "new"})
    again = secrets.put_pending("prod/billing", TOKEN_1, {**RDS_SECRET, "password": "new"})
    assert first == again == TOKEN_1 and len(secrets.versions("prod/billing")) == 2


def test_put_pending_with_the_same_token_and_another_value_fails(aws: str) -> None:
    """A token names one value: another one is refused and the pending value stays (moto would overwrite it)."""
    _secret(aws, json.dumps(RDS_SECRET))
    secrets = _secrets(aws)
    secrets.put_pending("prod/billing", TOKEN_1, {**RDS_SECRET, "password": "new"})
    with pytest.raises(PermanentError):
        secrets.put_pending("prod/billing", TOKEN_1, {**RDS_SECRET, "password": "other"})
    assert secrets.get_value("prod/billing", stage=PENDING)["password"] == "new"


def test_versions_without_a_label_are_not_listed(aws: str) -> None:
    """A newer pending version takes the label, and the unlabelled one is deprecated (moto would list it)."""
    current = _secret(aws, json.dumps(RDS_SECRET))
    secrets = _secrets(aws)
    secrets.put_pending("prod/billing", TOKEN_1, {**RDS_SECRET, "password": "one"})
    secrets.put_pending("prod/billing", TOKEN_2, {**RDS_SECRET, "password": "two"})
    assert sorted(secrets.versions("prod/billing"), key=lambda v: v.version_id) == sorted(
        [SecretVersion(current, (CURRENT,)), SecretVersion(TOKEN_2, (PENDING,))], key=lambda v: v.version_id
    )


def test_promote_moves_current_and_labels_the_old_version_previous(aws: str) -> None:
    """AWSCURRENT moves to the new version and AWSPREVIOUS to the former current one."""
    old = _secret(aws, json.dumps(RDS_SECRET))
    secrets = _secrets(aws)
    secrets.put_pending("prod/billing", TOKEN_1, {**RDS_SECRET, "password": "new"})
    secrets.promote("prod/billing", TOKEN_1, old)
    stages = {v.version_id: set(v.stages) for v in secrets.versions("prod/billing")}
    assert CURRENT in stages[TOKEN_1] and stages[old] == {PREVIOUS}
    assert secrets.get_value("prod/billing")["password"] == "new"


def test_remove_pending_takes_the_label_off(aws: str) -> None:
    """After remove_pending the version no longer carries AWSPENDING."""
    _secret(aws, json.dumps(RDS_SECRET))
    secrets = _secrets(aws)
    secrets.put_pending("prod/billing", TOKEN_1, {**RDS_SECRET, "password": "new"})
    secrets.remove_pending("prod/billing", TOKEN_1)
    assert all(PENDING not in v.stages for v in secrets.versions("prod/billing"))


def test_new_password_is_32_alphanumeric_characters(aws: str) -> None:
    """GetRandomPassword without punctuation: safe in a DSN and in SQL."""
    password = _secrets(aws).new_password()
    assert len(password) == 32 and password.isalnum()


def test_a_secret_not_in_json_is_refused_without_quoting_it(aws: str) -> None:
    """A plain-text secret is a PermanentError that says what is wrong and does not echo the value."""
    _secret(aws, "CANARY-plaintext-7731")
    with pytest.raises(PermanentError, match="not in RDS JSON format") as caught:
        _secrets(aws).get_value("prod/billing")
    assert "CANARY" not in str(caught.value) and "CANARY" not in caught.value.guidance


def test_no_secret_value_travels_in_an_error(aws: str) -> None:
    """Refused writes of a value holding a canary never put the canary in the error."""
    _secret(aws, json.dumps(RDS_SECRET))
    secrets = _secrets(aws)
    secrets.put_pending("prod/billing", TOKEN_1, {**RDS_SECRET, "password": "new"})
    failures: list[PermanentError] = []
    for secret_id, token in (("prod/billing", TOKEN_1), ("no-such-secret", TOKEN_2)):
        with pytest.raises(PermanentError) as caught:
            secrets.put_pending(secret_id, token, {**RDS_SECRET, "password": "CANARY-9152"})
        failures.append(caught.value)
    assert all("CANARY" not in f"{err} {err.guidance} {err!r}" for err in failures)


# IAM -----------------------------------------------------------------------------------------------


def test_created_role_is_found_with_its_trust_and_tags(aws: str) -> None:
    """create_role writes the standard trust policy; get_role reads the service and the tags back."""
    iam = _iam(aws)
    made = iam.create_role("rds-monitoring", "monitoring.rds.amazonaws.com", {"opsbot:intent": "i-1"})
    found = iam.get_role("rds-monitoring")
    assert found == made
    assert found.trusted_services == ("monitoring.rds.amazonaws.com",) and found.tags == {"opsbot:intent": "i-1"}


def test_get_missing_role_is_none(aws: str) -> None:
    """NoSuchEntity is None."""
    assert _iam(aws).get_role("nope") is None


def test_taken_role_name_is_already_exists(aws: str) -> None:
    """EntityAlreadyExists is AlreadyExists, whoever made the role."""
    iam = _iam(aws)
    iam.create_role("rds-monitoring", "monitoring.rds.amazonaws.com", {})
    with pytest.raises(AlreadyExists):
        iam.create_role("rds-monitoring", "monitoring.rds.amazonaws.com", {})


def test_trust_policy_is_read_from_json_text_too() -> None:
    """A raw, URL-encoded AssumeRolePolicyDocument gives the same services as boto3's decoded one."""
    raw = quote(json.dumps(trust_policy("rds.amazonaws.com")))
    assert trusted_services(raw) == trusted_services(trust_policy("rds.amazonaws.com")) == ("rds.amazonaws.com",)


def test_attach_is_idempotent_and_detach_removes(aws: str) -> None:
    """Attaching twice leaves one attachment; detaching removes it."""
    arn, iam = _policy(aws), _iam(aws)
    iam.create_role("rds-monitoring", "monitoring.rds.amazonaws.com", {})
    iam.attach_policy("rds-monitoring", arn)
    iam.attach_policy("rds-monitoring", arn)
    assert iam.attached_policies("rds-monitoring") == [arn]
    iam.detach_policy("rds-monitoring", arn)
    assert iam.attached_policies("rds-monitoring") == []


def test_detaching_a_detached_policy_is_a_no_op(aws: str) -> None:
    """NoSuchEntity on detach means there is nothing to undo."""
    arn, iam = _policy(aws), _iam(aws)
    iam.create_role("rds-monitoring", "monitoring.rds.amazonaws.com", {})
    iam.detach_policy("rds-monitoring", arn)
    assert iam.attached_policies("rds-monitoring") == []


def test_attaching_an_unknown_policy_is_permanent(aws: str) -> None:
    """A policy that does not exist cannot be attached, however often one tries."""
    iam = _iam(aws)
    iam.create_role("rds-monitoring", "monitoring.rds.amazonaws.com", {})
    with pytest.raises(PermanentError, match="NoSuchEntity"):
        iam.attach_policy("rds-monitoring", "arn:aws:iam::123456789012:policy/nope")


def test_delete_role_removes_it(aws: str) -> None:
    """A deleted role is not found any more."""
    iam = _iam(aws)
    iam.create_role("rds-monitoring", "monitoring.rds.amazonaws.com", {})
    iam.delete_role("rds-monitoring")
    assert iam.get_role("rds-monitoring") is None


def test_policy_exists_answers_from_get_policy(aws: str) -> None:
    """An existing policy is found; NoSuchEntity is False."""
    arn, iam = _policy(aws), _iam(aws)
    assert iam.policy_exists(arn)
    assert not iam.policy_exists("arn:aws:iam::123456789012:policy/nope")
