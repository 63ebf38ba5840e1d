"""The workflow catalog: every workflow opsbot can run, as a list of classes."""

from __future__ import annotations

from typing import Any

from workflows.catalog.db_rotate_password import RotatePassword
from workflows.catalog.iam_create_role import CreateRole
from workflows.catalog.pg_migrate import Migrate
from workflows.catalog.rds_create_replica import CreateReplica
from workflows.catalog.rds_rebuild_replica import RebuildReplica
from workflows.catalog.rds_resize import Resize
from workflows.catalog.rds_resize_cluster import ResizeCluster
from workflows.catalog.rds_snapshot import Snapshot
from workflows.registry import Registry

CATALOG: tuple[type[Any], ...] = (
    CreateReplica,
    Migrate,
    RotatePassword,
    Resize,
    ResizeCluster,
    CreateRole,
    Snapshot,
    RebuildReplica,
)


def build_registry() -> Registry:
    """A fresh registry holding the whole catalog."""
    return Registry(CATALOG)
