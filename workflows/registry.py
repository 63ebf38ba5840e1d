"""Workflows as typed contracts, declared with a decorator onto an injectable registry."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel

from workflows.errors import UnknownWorkflow

if TYPE_CHECKING:
    from workflows.context import PreflightContext, StepContext
    from workflows.outcomes import Evidence, Observation, StepOutcome


class Rollback(StrEnum):
    """What undoing a step means: run a compensation, nothing to undo, or impossible."""

    COMPENSATE = "compensate"
    NONE = "none"
    IRREVERSIBLE = "irreversible"


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How the executor retries a transient step failure, and how often the reconciler requeues."""

    attempts: int = 3
    initial_delay: float = 0.5
    max_delay: float = 10.0
    requeues: int = 3


@dataclass(frozen=True, slots=True)
class Step:
    """One bounded unit of work; the workflow class provides `<name>` and optionally `probe_<name>`."""

    name: str
    rollback: Rollback = Rollback.NONE
    timeout: float = 60.0
    convergence_window: float | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class Postcondition:
    """Evidence of success; the workflow class provides `check_<name>`."""

    name: str
    description: str


@dataclass(frozen=True, slots=True)
class PlanDraft:
    """What a workflow's preflight observed and proposes; the engine completes it into a Plan."""

    targets: tuple[str, ...]
    mutations: tuple[tuple[str, str, str], ...]
    observed: dict[str, Any]
    locks: tuple[str, ...] = ()
    blast_radius: str | None = None


P = TypeVar("P", bound=BaseModel)


class Workflow:
    """Base of every workflow class; the decorator fills `spec`."""

    spec: ClassVar[WorkflowSpec]
    steps: ClassVar[tuple[Step, ...]] = ()
    postconditions: ClassVar[tuple[Postcondition, ...]] = ()

    def preflight(self, ctx: PreflightContext) -> PlanDraft:
        raise NotImplementedError

    def action(self, step: Step) -> Callable[[StepContext], StepOutcome]:
        fn: Callable[[StepContext], StepOutcome] = getattr(self, step.name)
        return fn

    def probe(self, step: Step) -> Callable[[StepContext], Observation] | None:
        fn: Callable[[StepContext], Observation] | None = getattr(self, f"probe_{step.name}", None)
        return fn

    def compensation(self, step: Step) -> Callable[[StepContext], StepOutcome] | None:
        fn: Callable[[StepContext], StepOutcome] | None = getattr(self, f"compensate_{step.name}", None)
        return fn

    def check(self, post: Postcondition) -> Callable[[StepContext], Evidence]:
        fn: Callable[[StepContext], Evidence] = getattr(self, f"check_{post.name}")
        return fn


@dataclass(frozen=True, slots=True)
class WorkflowSpec:
    name: str
    summary: str
    params: type[BaseModel]
    request_roles: tuple[str, ...]
    approve_roles: tuple[str, ...]
    approvals: int
    risk: Risk
    blast_radius: str
    rollback_limits: str
    retry: RetryPolicy
    timeout: float
    steps: tuple[Step, ...]
    postconditions: tuple[Postcondition, ...]
    factory: Callable[[], Workflow] = field(repr=False)

    @property
    def irreversible(self) -> bool:
        return any(s.rollback is Rollback.IRREVERSIBLE for s in self.steps)

    @property
    def rollback(self) -> dict[str, str]:
        return {s.name: s.rollback.value for s in self.steps}


class Registry:
    """Workflows by name. Tests make their own; the catalog fills `default_registry`."""

    def __init__(self) -> None:
        self._specs: dict[str, WorkflowSpec] = {}

    def get(self, name: str) -> WorkflowSpec:
        try:
            return self._specs[name]
        except KeyError:
            known = ", ".join(sorted(self._specs)) or "none"
            raise UnknownWorkflow(f"unknown workflow {name!r}; known workflows: {known}") from None

    def __iter__(self) -> Iterator[WorkflowSpec]:
        return iter(sorted(self._specs.values(), key=lambda s: s.name))

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def add(self, spec: WorkflowSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"workflow {spec.name!r} is registered twice")
        self._specs[spec.name] = spec


W = TypeVar("W", bound=type[Workflow])


def workflow(
    registry: Registry,
    *,
    name: str,
    summary: str,
    params: type[BaseModel],
    request_roles: tuple[str, ...],
    approve_roles: tuple[str, ...],
    risk: Risk,
    blast_radius: str,
    approvals: int | None = None,
    rollback_limits: str = "",
    retry: RetryPolicy = RetryPolicy(),
    timeout: float = 3600.0,
) -> Callable[[W], W]:
    """Register a workflow class as a typed contract; returns the class unchanged."""

    def decorate(cls: W) -> W:
        missing = [s.name for s in cls.steps if not callable(getattr(cls, s.name, None))]
        missing += [
            f"check_{p.name}" for p in cls.postconditions if not callable(getattr(cls, f"check_{p.name}", None))
        ]
        if missing:
            raise TypeError(f"workflow {name!r} declares steps or checks without methods: {missing}")
        if not cls.postconditions:
            raise TypeError(f"workflow {name!r} declares no postconditions: success needs evidence")
        needed = (
            approvals
            if approvals is not None
            else (2 if any(s.rollback is Rollback.IRREVERSIBLE for s in cls.steps) else 1)
        )
        spec = WorkflowSpec(
            name=name,
            summary=summary,
            params=params,
            request_roles=request_roles,
            approve_roles=approve_roles,
            approvals=needed,
            risk=risk,
            blast_radius=blast_radius,
            rollback_limits=rollback_limits,
            retry=retry,
            timeout=timeout,
            steps=cls.steps,
            postconditions=cls.postconditions,
            factory=cls,
        )
        registry.add(spec)
        cls.spec = spec
        return cls

    return decorate
