"""The workflow catalog: every workflow opsbot can run, as a list of classes."""

from __future__ import annotations

from typing import Any

from workflows.catalog.rds_create_replica import CreateReplica
from workflows.registry import Registry

CATALOG: tuple[type[Any], ...] = (CreateReplica,)


def build_registry() -> Registry:
    """A fresh registry holding the whole catalog."""
    return Registry(CATALOG)
