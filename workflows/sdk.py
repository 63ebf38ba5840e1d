"""Everything a workflow author needs, in one import: `from workflows.sdk import *` or `from workflows import sdk`.

See the authoring guide in the README and `workflows.catalog.rds_create_replica` for a whole example.
"""

from __future__ import annotations

from workflows.authoring import (
    PlanDraft,
    RetryPolicy,
    Risk,
    Rollback,
    Workflow,
    postcondition,
    step,
    workflow,
)
from workflows.config import Environment
from workflows.context import PreflightContext, StepContext
from workflows.errors import (
    AlreadyExists,
    OutcomeUnknown,
    PermanentError,
    PreconditionFailed,
    TransientError,
    UnsafeError,
)
from workflows.outcomes import Absent, Done, Evidence, Observation, Pending, StepOutcome, Unclear
from workflows.plan import Mutation
from workflows.ports import AdapterFactory, DatabasePort, DbInstance, RdsPort

__all__ = [
    "Absent",
    "AdapterFactory",
    "AlreadyExists",
    "DatabasePort",
    "DbInstance",
    "Done",
    "Environment",
    "Evidence",
    "Mutation",
    "Observation",
    "OutcomeUnknown",
    "Pending",
    "PermanentError",
    "PlanDraft",
    "PreconditionFailed",
    "PreflightContext",
    "RdsPort",
    "RetryPolicy",
    "Risk",
    "Rollback",
    "StepContext",
    "StepOutcome",
    "TransientError",
    "Unclear",
    "UnsafeError",
    "Workflow",
    "postcondition",
    "step",
    "workflow",
]
