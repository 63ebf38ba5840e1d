"""The sandbox's workspace and AWS: who is in it, what each may do, and the example resources moto holds."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3

from devstack.demo import INCIDENT, OPS, Stack, local_stack

ALICE, BOB, CAROL, OTTO = "U0ALICE01", "U0BOB0001", "U0CAROL01", "U0OTTO001"
NAMES = {ALICE: "alice", BOB: "bob", CAROL: "carol", OTTO: "otto"}
OUTSIDER = OTTO  # in the workspace, in no role of the config
CHANNELS = {OPS: "ops", INCIDENT: "incident"}
CONFIG: dict[str, Any] = {
    "environments": {
        "prod": {"aws_region": "us-east-1", "incident_channel": INCIDENT},
        "lab": {"aws_region": "us-east-1", "production": False},
    },
    "roles": {"dba": [ALICE, CAROL], "dba-lead": [BOB, CAROL], "platform": [CAROL], "platform-lead": [BOB]},
    "policies": {"rds.create-replica": {"request": ["dba"], "approve": ["dba-lead"], "approvals": 1}},
}
REGION = "us-east-1"
BROKEN_SOURCE = "legacy-db"  # its read replicas never replicate: the sandbox's way to show a failure
NOTES = {BROKEN_SOURCE: "its replicas never replicate: request one to see a failure and its recovery buttons"}
SERVE_ENV = {"OPSBOT_RECONCILE_INTERVAL_SECONDS": "2"}


@dataclass(frozen=True)
class Person:
    """A member of the sandbox workspace and the config roles that name them."""

    id: str
    name: str
    roles: tuple[str, ...]


def people(config: dict[str, Any] = CONFIG, names: dict[str, str] = NAMES, outsider: str = OUTSIDER) -> list[Person]:
    """The users the config's roles name (in the order of `names`), then the outsider."""
    roles: dict[str, list[str]] = {}
    for role, members in config["roles"].items():
        for member in members:
            roles.setdefault(member, []).append(role)
    named = list(names)
    ids = sorted(roles, key=lambda uid: named.index(uid) if uid in named else len(named))
    ids += [outsider] if outsider not in roles else []
    return [Person(uid, names.get(uid, uid), tuple(roles.get(uid, ()))) for uid in ids]


class BrokenReplication:
    """Replicas of the given sources report `read replication: error` in moto, in this process, while started.

    Installed over the dev stack's ReplicationSimulator (which marks every replica healthy), so it must be
    stopped before that one is.
    """

    def __init__(self, sources: Iterable[str]) -> None:
        self.sources = frozenset(sources)
        self._original: Callable[..., Any] | None = None

    def start(self) -> BrokenReplication:
        from moto.rds.models import RDSBackend

        inner = RDSBackend.describe_db_instances
        self._original = inner
        sources = self.sources

        def describe_db_instances(backend: Any, *args: Any, **kwargs: Any) -> Any:
            for db in list(backend.databases.values()):
                if getattr(db, "read_replica_source_db_instance_identifier", None) in sources:
                    # moto's model has no such field; its serializer reads it when set
                    db.status_infos = [{"StatusType": "read replication", "Status": "error", "Normal": False}]
            return inner(backend, *args, **kwargs)

        RDSBackend.describe_db_instances = describe_db_instances  # type: ignore[method-assign,assignment]
        return self

    def stop(self) -> None:
        from moto.rds.models import RDSBackend

        if self._original is not None:
            RDSBackend.describe_db_instances = self._original  # type: ignore[method-assign]
            self._original = None


def rds_client(endpoint: str) -> Any:
    return boto3.client(
        "rds",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def seed(endpoint: str) -> None:
    """Example resources beside the dev stack's `billing-db`: a source whose replicas fail to replicate."""
    rds_client(endpoint).create_db_instance(
        DBInstanceIdentifier=BROKEN_SOURCE,
        Engine="postgres",
        DBInstanceClass="db.t3.medium",
        MasterUsername="admin",
        MasterUserPassword="local-password-1",
        AllocatedStorage=20,
    )


def instances(endpoint: str) -> list[dict[str, str]]:
    """What moto holds now: each RDS instance's id, status, class and (for a replica) its source."""
    found = rds_client(endpoint).describe_db_instances()["DBInstances"]
    return [
        {
            "id": str(db["DBInstanceIdentifier"]),
            "status": str(db.get("DBInstanceStatus", "")),
            "class": str(db.get("DBInstanceClass", "")),
            "source": str(db.get("ReadReplicaSourceDBInstanceIdentifier") or ""),
            "replication": ", ".join(f"{s['StatusType']}: {s['Status']}" for s in db.get("StatusInfos", [])),
        }
        for db in found
    ]


@contextmanager
def sandbox_stack() -> Iterator[Stack]:
    """The dev stack on embedded defaults, with the sandbox's people, channels and example resources."""
    users = {p.id: p.name for p in people()}
    with local_stack(CONFIG, users, SERVE_ENV) as stack:
        seed(stack.aws)
        broken = BrokenReplication({BROKEN_SOURCE}).start()
        try:
            yield stack
        finally:
            broken.stop()
