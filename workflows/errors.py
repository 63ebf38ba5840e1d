"""The small typed error hierarchy.

`OpsError` subclasses are user-facing: their message is safe to show an operator as is.
`StepError` subclasses are the executor's retry contract: transient, permanent, outcome-unknown.
"""

from __future__ import annotations


class OpsError(Exception):
    """An error whose message is meant for the operator."""

    code = "error"


class InvalidInput(OpsError):
    code = "invalid_input"


class UnknownWorkflow(InvalidInput):
    code = "unknown_workflow"


class PermissionDenied(OpsError):
    code = "permission_denied"


class NotFound(OpsError):
    code = "not_found"


class StalePlan(OpsError):
    code = "stale_plan"


class InvalidTransition(OpsError):
    """The requested action does not apply to the intent's current state."""

    code = "invalid_transition"


class IllegalTransition(InvalidTransition):
    """The state table does not allow this status change."""

    code = "illegal_transition"


class PreconditionFailed(OpsError):
    """Preflight found the world unfit for the operation."""

    code = "precondition_failed"


class ConfigError(OpsError):
    code = "config_error"


class StoreUnavailable(OpsError):
    """The intent store cannot be reached or refuses writes (down, read-only, disk full): nothing was written."""

    code = "store_unavailable"


class ConcurrentModification(Exception):
    """A compare-and-set lost: somebody else moved the intent first."""


class LeaseLost(Exception):
    """This executor no longer owns the intent; it must stop touching it."""


class DefinitionError(TypeError):
    """A workflow class is declared wrong; raised when it is decorated or registered, naming workflow and step."""


class StepError(Exception):
    """Base of the executor's retry contract."""


class TransientError(StepError):
    """Safe to retry after `delay` seconds: the call certainly did not take effect or is idempotent."""

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(StepError):
    """Retrying will not help; `guidance` tells the operator what might."""

    def __init__(self, message: str, guidance: str = "") -> None:
        super().__init__(message)
        self.guidance = guidance


class AlreadyExists(PermanentError):
    """The resource a create step names exists already; only proof of ownership lets us adopt it."""


class UnsafeError(PermanentError):
    """Continuing could harm something that is not ours."""


class OutcomeUnknown(StepError):
    """The call may or may not have taken effect: observe before doing anything else."""
