"""What moto leaves out of RDS read replicas, filled in for local runs: replication status and ReplicaLag.

moto reports no `StatusInfos` and publishes no CloudWatch metrics, so a replica could never look healthy. While
started, every DescribeDBInstances answered by the moto server in this process marks each read replica
`read replication: replicating` (unless a test set its own status infos) and keeps fresh one-minute `ReplicaLag`
datapoints for it (unless a test put its own). Development and test tooling only: production talks to real AWS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

HEALTHY_LAG = 0.4


class ReplicationSimulator:
    """Patches moto's RDS backend in this process for as long as it is started."""

    def __init__(self) -> None:
        self._original: Callable[..., Iterable[Any]] | None = None
        self._lock = threading.Lock()
        self._held: set[str] = set()

    def hold(self, identifier: str) -> None:
        """Leave this replica alone: a test scripts its replication status and lag itself."""
        self._held.add(identifier)

    def release(self, identifier: str) -> None:
        self._held.discard(identifier)

    def start(self) -> ReplicationSimulator:
        from moto.rds.models import RDSBackend

        original = RDSBackend.describe_db_instances
        self._original = original
        simulator = self

        def describe_db_instances(backend: Any, *args: Any, **kwargs: Any) -> list[Any]:
            found = list(original(backend, *args, **kwargs))
            for db in found:
                simulator._feed(backend, db)
            return found

        RDSBackend.describe_db_instances = describe_db_instances  # type: ignore[method-assign,assignment]
        return self

    def stop(self) -> None:
        from moto.rds.models import RDSBackend

        if self._original is not None:
            RDSBackend.describe_db_instances = self._original  # type: ignore[method-assign,assignment]
            self._original = None

    def _feed(self, backend: Any, db: Any) -> None:
        """Mark a replica replicating and keep its lag fresh, unless a test set its status infos itself."""
        replica = bool(getattr(db, "read_replica_source_db_instance_identifier", None))
        if not replica or db.db_instance_identifier in self._held:
            return
        if not getattr(db, "status_infos", None):
            db.status_infos = [{"StatusType": "read replication", "Status": "replicating", "Normal": True}]
            db.opsbot_simulated = True
        if not getattr(db, "opsbot_simulated", False):
            return  # a test scripts this replica's replication and lag itself
        from moto.cloudwatch.models import cloudwatch_backends

        identifier = db.db_instance_identifier
        metrics = cloudwatch_backends[backend.account_id][backend.region_name]
        now = datetime.now(UTC).replace(tzinfo=None)  # moto keeps metric timestamps naive UTC
        with self._lock:
            newest = self._newest(metrics, identifier)
            if newest is not None and now - newest < timedelta(seconds=20):
                return
            fresh = newest is not None and now - newest < timedelta(minutes=4)
            stamps = [now] if fresh else [now - timedelta(minutes=m) for m in (4, 3, 2, 1, 0)]
            metrics.put_metric_data(
                "AWS/RDS",
                [
                    {
                        "MetricName": "ReplicaLag",
                        "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": identifier}],
                        "Timestamp": at,
                        "Value": HEALTHY_LAG,
                        "Unit": "Seconds",
                    }
                    for at in stamps
                ],
            )

    @staticmethod
    def _newest(metrics: Any, identifier: str) -> datetime | None:
        stamps = []
        for datum in getattr(metrics, "metric_data", []):
            if getattr(datum, "name", "") != "ReplicaLag":
                continue
            dims = {getattr(d, "name", ""): getattr(d, "value", "") for d in getattr(datum, "dimensions", [])}
            if dims.get("DBInstanceIdentifier") == identifier and getattr(datum, "timestamp", None):
                stamps.append(datum.timestamp)
        return max(stamps, default=None)
