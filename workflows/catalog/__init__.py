"""The workflow catalog: every workflow opsbot can run."""

from __future__ import annotations

from workflows.catalog import rds_create_replica
from workflows.registry import Registry


def build_registry() -> Registry:
    """A fresh registry holding the whole catalog."""
    registry = Registry()
    rds_create_replica.register(registry)
    return registry
