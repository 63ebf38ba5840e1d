"""The workflow-authoring API: a workflow is one class; its steps, probes, compensations and checks are bound
by reference, and the whole declaration is validated when the class is decorated.

    @workflow(name="rds.resize", summary="Resize an RDS instance", risk=Risk.MEDIUM, ...)
    class Resize(Workflow[ResizeParams]):
        def preflight(self, ctx: PreflightContext[ResizeParams]) -> PlanDraft: ...

        @step(rollback=Rollback.COMPENSATE, timeout=120)
        def modify(self, ctx: StepContext[ResizeParams]) -> StepOutcome: ...

        @modify.probe
        def _observe_modify(self, ctx: StepContext[ResizeParams]) -> Observation: ...

        @modify.compensate
        def _undo_modify(self, ctx: StepContext[ResizeParams]) -> StepOutcome: ...

        @postcondition("the instance has the requested class")
        def expected_class(self, ctx: StepContext[ResizeParams]) -> Evidence: ...

Nothing is ever found by its name: a misspelt probe is a NameError when the class body runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, get_args, get_origin

from pydantic import BaseModel

from workflows.errors import DefinitionError
from workflows.plan import Mutation, canonical_json, sha256_hex

if TYPE_CHECKING:
    from workflows.context import PreflightContext, StepContext
    from workflows.outcomes import Evidence, Observation, StepOutcome


class Rollback(StrEnum):
    """What undoing a step means: run its compensation, nothing to undo, or impossible."""

    COMPENSATE = "compensate"
    NONE = "none"
    IRREVERSIBLE = "irreversible"


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How the executor retries a transient step failure in place, and how often the reconciler requeues."""

    attempts: int = 3
    initial_delay: float = 0.5
    max_delay: float = 10.0
    requeues: int = 3


@dataclass(frozen=True, slots=True)
class PlanDraft:
    """What a workflow's preflight observed and proposes; the engine completes it into a Plan."""

    targets: tuple[str, ...]
    mutations: tuple[Mutation, ...]
    observed: dict[str, Any]
    locks: tuple[str, ...] = ()
    blast_radius: str | None = None
    each: dict[str, tuple[str, ...]] = field(default_factory=dict)  # items of the steps declared `each=<key>`


P = TypeVar("P", bound=BaseModel)
W = TypeVar("W")
Run = Callable[[Any, "StepContext[Any]"], "StepOutcome"]
Probe = Callable[[Any, "StepContext[Any]"], "Observation"]
Check = Callable[[Any, "StepContext[Any]"], "Evidence"]
VERIFY_STEP = "verify_postconditions"
COMPENSATION_PREFIX = "compensate_"


class StepDef(Generic[W, P]):
    """A step as declared in the class body; `@<step>.probe` and `@<step>.compensate` bind to it by reference."""

    def __init__(
        self,
        fn: Callable[[W, StepContext[P]], StepOutcome],
        *,
        rollback: Rollback,
        timeout: float,
        convergence_window: float | None,
        retry: RetryPolicy | None,
        idempotent: str | None,
        description: str,
        each: str | None = None,
    ) -> None:
        self.fn, self.name = fn, fn.__name__
        self.rollback, self.timeout, self.convergence_window = rollback, timeout, convergence_window
        self.retry, self.idempotent, self.description, self.each = retry, idempotent, description, each
        self.probe_fn: Callable[[W, StepContext[P]], Observation] | None = None
        self.compensate_fn: Callable[[W, StepContext[P]], StepOutcome] | None = None
        self.problems: list[str] = []

    def probe(self, fn: Callable[[W, StepContext[P]], Observation]) -> Callable[[W, StepContext[P]], Observation]:
        """Bind `fn` as this step's probe: how to tell, after a crash, whether the step took effect."""
        if self.probe_fn is not None:
            self.problems.append(f"step {self.name!r} binds two probes ({self.probe_fn.__name__}, {fn.__name__})")
        self.probe_fn = fn
        return fn

    def compensate(self, fn: Callable[[W, StepContext[P]], StepOutcome]) -> Callable[[W, StepContext[P]], StepOutcome]:
        """Bind `fn` as this step's compensation; it is re-run after a crash, so it must look before it acts."""
        if self.compensate_fn is not None:
            self.problems.append(
                f"step {self.name!r} binds two compensations ({self.compensate_fn.__name__}, {fn.__name__})"
            )
        self.compensate_fn = fn
        return fn


class PostconditionDef(Generic[W, P]):
    """A postcondition as declared in the class body: evidence of success, with what it checks."""

    def __init__(self, fn: Callable[[W, StepContext[P]], Evidence], description: str) -> None:
        self.fn, self.name, self.description = fn, fn.__name__, description


def step(
    *,
    rollback: Rollback,
    timeout: float = 60.0,
    convergence_window: float | None = None,
    retry: RetryPolicy | None = None,
    idempotent: str | None = None,
    description: str = "",
    each: str | None = None,
) -> Callable[[Callable[[W, StepContext[P]], StepOutcome]], StepDef[W, P]]:
    """Declare a step. Steps run in the order they are defined.

    `rollback` is the step's posture (a COMPENSATE step must bind `@<step>.compensate`). A step needs a probe
    (`@<step>.probe`) unless it declares `idempotent="why re-running it is harmless"`. With `each="<key>"` the
    step runs once per item that preflight lists under that key (`PlanDraft(each={"<key>": (...)})`), in that
    order, each its own checkpointed step `<name>[<item>]`; the item is `ctx.item`.
    """

    def decorate(fn: Callable[[W, StepContext[P]], StepOutcome]) -> StepDef[W, P]:
        return StepDef(
            fn,
            rollback=rollback,
            timeout=timeout,
            convergence_window=convergence_window,
            retry=retry,
            idempotent=idempotent,
            description=description,
            each=each,
        )

    return decorate


def postcondition(description: str) -> Callable[[Callable[[W, StepContext[P]], Evidence]], PostconditionDef[W, P]]:
    """Declare a postcondition: a check that must hold, with its evidence, before an intent succeeds."""

    def decorate(fn: Callable[[W, StepContext[P]], Evidence]) -> PostconditionDef[W, P]:
        return PostconditionDef(fn, description)

    return decorate


class _Declarations(dict[str, Any]):
    """A class namespace that remembers when a step or postcondition is defined twice under one name."""

    def __init__(self) -> None:
        super().__init__()
        self.redefined: list[str] = []

    def __setitem__(self, key: str, value: Any) -> None:
        old = self.get(key)
        if isinstance(old, StepDef | PostconditionDef) and old is not value:
            what = "step" if isinstance(old, StepDef) else "postcondition"
            self.redefined.append(f"{what} {key!r} is defined twice (the second definition would hide the first)")
        super().__setitem__(key, value)


class _WorkflowMeta(type):
    @classmethod
    def __prepare__(mcs, name: str, bases: tuple[type, ...], **kwargs: Any) -> _Declarations:  # type: ignore[override]
        return _Declarations()

    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any) -> _WorkflowMeta:
        redefined = namespace.redefined if isinstance(namespace, _Declarations) else []
        cls = super().__new__(mcs, name, bases, dict(namespace), **kwargs)
        cls._redefined = tuple(redefined)  # type: ignore[attr-defined]
        return cls


class Workflow(Generic[P], metaclass=_WorkflowMeta):
    """Base of every workflow class: generic over its input model, so `ctx.params` has that model's type."""

    __opsbot_definition__: ClassVar[WorkflowDefinition]
    _redefined: ClassVar[tuple[str, ...]] = ()

    def preflight(self, ctx: PreflightContext[P]) -> PlanDraft:
        raise NotImplementedError


RESERVED = frozenset({"preflight", VERIFY_STEP, "probe", "check", "compensate", "step", "postcondition"}) | frozenset(
    n for n in dir(Workflow) if not n.startswith("__")
)


@dataclass(frozen=True, slots=True)
class StepSpec:
    """A validated step: what the executor runs, observes and undoes."""

    name: str
    run: Run
    rollback: Rollback
    timeout: float
    convergence_window: float | None = None
    retry: RetryPolicy | None = None
    probe: Probe | None = None
    compensation: Run | None = None
    idempotent: str | None = None
    description: str = ""
    each: str | None = None

    @property
    def rerun_safe(self) -> bool:
        return self.idempotent is not None

    def shape(self) -> str:
        """What the definition fingerprint covers for this step."""
        return (
            f"{self.name}:{self.rollback.value}:probe={self.probe is not None}"
            f":compensation={self.compensation is not None}:idempotent={self.idempotent is not None}"
            + (f":each={self.each}" if self.each else "")
        )


@dataclass(frozen=True, slots=True)
class PostconditionSpec:
    name: str
    description: str
    check: Check


@dataclass(frozen=True, slots=True)
class Definition:
    """A fingerprint of a workflow's shape; an intent records it when planned and is checked against it later."""

    hash: str
    steps: tuple[str, ...]

    @classmethod
    def of(cls, steps: tuple[StepSpec, ...]) -> Definition:
        shapes = tuple(s.shape() for s in steps)
        return cls(sha256_hex(canonical_json(list(shapes)))[:32], shapes)


@dataclass(frozen=True, slots=True)
class WorkflowDefinition:
    """Everything the engine knows of one workflow, validated once."""

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
    steps: tuple[StepSpec, ...]
    postconditions: tuple[PostconditionSpec, ...]
    cls: type[Workflow[Any]] = field(repr=False)
    definition: Definition = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "definition", Definition.of(self.steps))

    def factory(self) -> Workflow[Any]:
        return self.cls()

    def step(self, name: str) -> StepSpec | None:
        return next((s for s in self.steps if s.name == name), None)

    @property
    def irreversible(self) -> bool:
        return any(s.rollback is Rollback.IRREVERSIBLE for s in self.steps)

    @property
    def rollback(self) -> dict[str, str]:
        return {s.name: s.rollback.value for s in self.steps}


WorkflowSpec = WorkflowDefinition  # the name the rest of the engine grew up with
C = TypeVar("C", bound=type[Workflow[Any]])


def workflow(
    *,
    name: str,
    summary: str,
    risk: Risk,
    blast_radius: str,
    request_roles: tuple[str, ...],
    approve_roles: tuple[str, ...],
    approvals: int | None = None,
    rollback_limits: str = "",
    retry: RetryPolicy = RetryPolicy(),
    timeout: float = 3600.0,
) -> Callable[[C], C]:
    """Validate a workflow class and attach its definition; returns the same class. No registry is involved."""

    def decorate(cls: C) -> C:
        cls.__opsbot_definition__ = _define(
            cls,
            name=name,
            summary=summary,
            risk=risk,
            blast_radius=blast_radius,
            request_roles=request_roles,
            approve_roles=approve_roles,
            approvals=approvals,
            rollback_limits=rollback_limits,
            retry=retry,
            timeout=timeout,
        )
        return cls

    return decorate


def definition_of(cls: type[Any]) -> WorkflowDefinition:
    """The definition `@workflow` attached to `cls`; a class without one is refused with that advice."""
    found = cls.__dict__.get("__opsbot_definition__") if isinstance(cls, type) else None
    if not isinstance(found, WorkflowDefinition):
        raise DefinitionError(f"{getattr(cls, '__name__', cls)!r} is not a workflow: decorate it with @workflow(...)")
    return found


def _params_model(cls: type[Any], name: str) -> type[BaseModel]:
    for base in getattr(cls, "__orig_bases__", ()):
        if get_origin(base) is Workflow:
            (model,) = get_args(base)
            if isinstance(model, type) and issubclass(model, BaseModel):
                return model
    raise DefinitionError(f"workflow {name!r}: subclass Workflow[<input model>], e.g. Workflow[ResizeParams]")


def _define(cls: type[Workflow[Any]], *, name: str, approvals: int | None, **options: Any) -> WorkflowDefinition:
    def refuse(problem: str) -> DefinitionError:
        return DefinitionError(f"workflow {name!r} ({cls.__name__}): {problem}")

    if cls._redefined:
        raise refuse(cls._redefined[0])
    if not issubclass(cls, Workflow):
        raise refuse("a workflow class must subclass Workflow[<input model>]")
    params = _params_model(cls, name)
    step_defs: list[StepDef[Any, Any]] = []
    post_defs: list[PostconditionDef[Any, Any]] = []
    for attr, value in cls.__dict__.items():
        if isinstance(value, StepDef) and value not in step_defs:
            if attr != value.name:
                raise refuse(f"step {value.name!r} is also bound as {attr!r}; give each step one name")
            step_defs.append(value)
        elif isinstance(value, PostconditionDef):
            post_defs.append(value)
    steps = tuple(_step_spec(d, refuse) for d in step_defs)
    if not steps:
        raise refuse("it declares no steps: decorate its methods with @step(...)")
    if not post_defs:
        raise refuse("it declares no postcondition: success needs evidence (decorate a check with @postcondition)")
    names = [s.name for s in steps] + [p.name for p in post_defs]
    for n in names:
        if n in RESERVED or n.startswith(COMPENSATION_PREFIX):
            raise refuse(f"{n!r} clashes with a name the framework uses itself; rename it")
        if names.count(n) > 1:
            raise refuse(f"the name {n!r} is used by a step and a postcondition; give each its own name")
    needed = (
        approvals if approvals is not None else (2 if any(s.rollback is Rollback.IRREVERSIBLE for s in steps) else 1)
    )
    if needed < 1:
        raise refuse("approvals must be at least 1: nobody acts alone on a risky change")
    return WorkflowDefinition(
        name=name,
        params=params,
        approvals=needed,
        steps=steps,
        postconditions=tuple(PostconditionSpec(p.name, p.description, p.fn) for p in post_defs),
        cls=cls,
        **options,
    )


def _step_spec(d: StepDef[Any, Any], refuse: Callable[[str], DefinitionError]) -> StepSpec:
    if d.problems:
        raise refuse(d.problems[0])
    where = f"step {d.name!r}"
    if d.rollback is Rollback.COMPENSATE and d.compensate_fn is None:
        raise refuse(f"{where} declares rollback=compensate but binds no compensation (@{d.name}.compensate)")
    if d.rollback is not Rollback.COMPENSATE and d.compensate_fn is not None:
        raise refuse(f"{where} binds a compensation but declares rollback={d.rollback.value}; say rollback=compensate")
    if d.probe_fn is None and not (d.idempotent or "").strip():
        raise refuse(
            f"{where} has no probe: bind one with @{d.name}.probe, or declare idempotent='why re-running it is "
            "harmless' if its effect is naturally idempotent"
        )
    if d.timeout <= 0:
        raise refuse(f"{where} needs a positive timeout")
    return StepSpec(
        name=d.name,
        run=d.fn,
        rollback=d.rollback,
        timeout=d.timeout,
        convergence_window=d.convergence_window,
        retry=d.retry,
        probe=d.probe_fn,
        compensation=d.compensate_fn,
        idempotent=(d.idempotent or "").strip() or None,
        description=d.description,
        each=d.each,
    )
