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
from workflows.outside import (
    CURRENT,
    PENDING,
    PREVIOUS,
    AdapterFactory,
    AppliedMigration,
    ClusterMember,
    DatabasePort,
    DbCluster,
    DbInstance,
    DbSnapshot,
    IamPort,
    IamRole,
    PgSession,
    RdsPort,
    SecretsPort,
    SecretVersion,
    StatusInfo,
)
from workflows.plan import Mutation

__all__ = [
    "CURRENT",
    "PENDING",
    "PREVIOUS",
    "Absent",
    "AdapterFactory",
    "AlreadyExists",
    "AppliedMigration",
    "ClusterMember",
    "DatabasePort",
    "DbCluster",
    "DbInstance",
    "DbSnapshot",
    "Done",
    "Environment",
    "Evidence",
    "IamPort",
    "IamRole",
    "Mutation",
    "Observation",
    "OutcomeUnknown",
    "Pending",
    "PermanentError",
    "PgSession",
    "PlanDraft",
    "PreconditionFailed",
    "PreflightContext",
    "RdsPort",
    "RetryPolicy",
    "Risk",
    "Rollback",
    "SecretVersion",
    "SecretsPort",
    "StatusInfo",
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
