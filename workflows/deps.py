"""The bundle of collaborators the engine's services share."""

from __future__ import annotations

from dataclasses import dataclass, field

from workflows.config import OpsConfig
from workflows.groups import NoGroups
from workflows.ports import AdapterFactory, Clock, FaultSeam, GroupDirectory, IdSource, Store
from workflows.registry import Registry
from workflows.runtime import NoFaults, SystemClock, UuidIds


@dataclass(frozen=True)
class Runtime:
    store: Store
    registry: Registry
    config: OpsConfig
    adapters: AdapterFactory
    clock: Clock = field(default_factory=SystemClock)
    ids: IdSource = field(default_factory=UuidIds)
    faults: FaultSeam = field(default_factory=NoFaults)
    groups: GroupDirectory = field(default_factory=NoGroups)  # roles naming Slack user groups refuse without one
    approval_ttl: float = 3600.0
    lease_seconds: float = 60.0
