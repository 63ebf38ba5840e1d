"""db.rotate-password: the Secrets Manager rotation protocol for a PostgreSQL role, step for step.

createSecret (a new password as AWSPENDING, under a client request token derived from the intent), setSecret
(ALTER ROLE through the admin DSN), testSecret (a login with the pending password), finishSecret (AWSCURRENT
moves to the new version, AWSPENDING is cleared). `alternating` rotates between the role and `<role>_clone`, so
one login stays valid at every moment. The password itself is never in a plan, a checkpoint, a log or a message.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workflows.sdk import (
    CURRENT,
    PENDING,
    PREVIOUS,
    Absent,
    DatabasePort,
    Done,
    Evidence,
    Mutation,
    Observation,
    PermanentError,
    PlanDraft,
    PreconditionFailed,
    PreflightContext,
    Risk,
    Rollback,
    SecretsPort,
    StepContext,
    StepOutcome,
    Workflow,
    postcondition,
    step,
    workflow,
)

PG_NAME = r"^[a-z_][a-z0-9_]{0,47}$"
_TOKENS = uuid.UUID("6f707362-6f74-4000-8000-726f74617465")  # the namespace of rotation tokens


class RotateParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    database: str = Field(pattern=PG_NAME, description="the database's name in the environment's config")
    role: str = Field(pattern=PG_NAME, description="the PostgreSQL role whose password rotates")
    strategy: Literal["single", "alternating"] = Field(
        default="single", description="single: one user; alternating: the role and <role>_clone take turns"
    )


Ctx = StepContext[RotateParams]


def token(intent_id: str) -> str:
    """The ClientRequestToken (and so the version id) of this intent's new secret version: 36 characters."""
    return str(uuid.uuid5(_TOKENS, intent_id))


def _secret_id(ctx: Ctx | PreflightContext[RotateParams]) -> str:
    ref = ctx.env.databases.get(ctx.params.database)
    if ref is None:
        raise PreconditionFailed(f"no database {ctx.params.database!r} in this environment's config")
    secret = ref.secrets.get(ctx.params.role)
    if secret is None:
        raise PreconditionFailed(
            f"no secret configured for role {ctx.params.role!r} (databases.{ctx.params.database}.secrets)"
        )
    return secret


def _sm(ctx: Ctx | PreflightContext[RotateParams]) -> SecretsPort:
    return ctx.adapters.secrets(ctx.env.aws_region)


def _db(ctx: Ctx | PreflightContext[RotateParams]) -> DatabasePort:
    return ctx.adapters.database(ctx.env, ctx.params.database)


def _next_user(ctx: Ctx) -> str:
    return str(ctx.intent.plan.get("observed", {}).get("next_user") or ctx.params.role)


def _stages(sm: SecretsPort, secret: str) -> dict[str, tuple[str, ...]]:
    return {v.version_id: v.stages for v in sm.versions(secret)}


def _current_version(stages: dict[str, tuple[str, ...]]) -> str:
    return next((v for v, s in stages.items() if CURRENT in s), "")


@workflow(
    name="db.rotate-password",
    summary="Rotate a PostgreSQL role's password through AWS Secrets Manager",
    risk=Risk.HIGH,
    blast_radius="clients of the role: single strategy refuses the old password once it is changed",
    request_roles=("dba",),
    approve_roles=("dba-lead",),
    rollback_limits="until the new version is current, compensation restores the current password; after, "
    "rotate again (the former password stays as AWSPREVIOUS)",
    timeout=3600.0,
)
class RotatePassword(Workflow[RotateParams]):
    """createSecret, setSecret, testSecret, finishSecret; each safe to kill and resume."""

    def preflight(self, ctx: PreflightContext[RotateParams]) -> PlanDraft:
        p, secret = ctx.params, _secret_id(ctx)
        sm, db = _sm(ctx), _db(ctx)
        if not db.role_exists(p.role):
            raise PreconditionFailed(f"role {p.role} does not exist in {p.database}")
        stages = _stages(sm, secret)
        current = _current_version(stages)
        if not current:
            raise PreconditionFailed(f"secret {secret} has no AWSCURRENT version")
        dangling = [v for v, s in stages.items() if PENDING in s]
        if dangling:
            raise PreconditionFailed(
                f"secret {secret} still has AWSPENDING on version {dangling[0]} from an earlier rotation: finish it "
                "or remove the label first (a dangling AWSPENDING makes the next rotation fail)"
            )
        username = str(sm.get_value(secret, stage=CURRENT).get("username") or "")
        clone = f"{p.role}_clone"
        if username not in (p.role, clone):
            raise PreconditionFailed(f"secret {secret} is for user {username!r}, not {p.role}")
        next_user = p.role if p.strategy == "single" else (clone if username == p.role else p.role)
        clone_note = (
            "" if next_user != clone or db.role_exists(clone) else f" (creating {clone} with {p.role}'s grants)"
        )
        return PlanDraft(
            targets=(f"secret:{secret}", f"pg-role:{p.database}/{next_user}"),
            mutations=(
                Mutation(action="put", target=f"secret:{secret}", detail="a new random password as AWSPENDING"),
                Mutation(action="alter", target=f"pg-role:{p.database}/{next_user}", detail="password" + clone_note),
                Mutation(action="test", target=f"pg-role:{p.database}/{next_user}", detail="log in with it"),
                Mutation(action="promote", target=f"secret:{secret}", detail="AWSCURRENT to the new version"),
            ),
            observed={"current_version": current, "current_user": username, "next_user": next_user},
            locks=(f"secret:{secret}", f"pg-role:{ctx.environment}/{p.database}/{p.role}"),
            blast_radius=(
                f"clients logging in as {p.role} with the old password are refused once it changes"
                if p.strategy == "single"
                else f"none expected: {username} keeps working while {next_user} gets the new password"
            ),
        )

    @step(rollback=Rollback.COMPENSATE, timeout=60.0, description="createSecret: a new password as AWSPENDING")
    def create_pending(self, ctx: Ctx) -> StepOutcome:
        sm, secret, version = _sm(ctx), _secret_id(ctx), token(ctx.intent.id)
        if version in _stages(sm, secret):
            return Done(external_ids={"version_id": version}, how="observed")  # reuse it: never a second password
        value: dict[str, Any] = {**sm.get_value(secret, stage=CURRENT), "username": _next_user(ctx)}
        value["password"] = sm.new_password()
        sm.put_pending(secret, version, value)
        ctx.checkpoint(version_id=version)
        return Done(external_ids={"version_id": version})

    @create_pending.probe
    def _pending_exists(self, ctx: Ctx) -> Observation:
        version = token(ctx.intent.id)
        if version in _stages(_sm(ctx), _secret_id(ctx)):
            return Done(external_ids={"version_id": version}, how="observed")
        return Absent("no version under this intent's token")

    @create_pending.compensate
    def _drop_pending(self, ctx: Ctx) -> StepOutcome:
        sm, secret, version = _sm(ctx), _secret_id(ctx), token(ctx.intent.id)
        stages = _stages(sm, secret).get(version, ())
        if PENDING in stages and CURRENT not in stages:
            sm.remove_pending(secret, version)
        return Done(output={"cleared": PENDING in stages})

    @step(rollback=Rollback.COMPENSATE, timeout=60.0, description="setSecret: the role gets the pending password")
    def set_password(self, ctx: Ctx) -> StepOutcome:
        sm, db, user = _sm(ctx), _db(ctx), _next_user(ctx)
        pending = sm.get_value(_secret_id(ctx), version_id=token(ctx.intent.id))
        if user != ctx.params.role:
            db.create_clone(ctx.params.role, user)
        db.set_password(user, str(pending["password"]))
        return Done(output={"user": user})

    @set_password.probe
    def _password_set(self, ctx: Ctx) -> Observation:
        pending = _sm(ctx).get_value(_secret_id(ctx), version_id=token(ctx.intent.id))
        if _db(ctx).can_login(_next_user(ctx), str(pending["password"])):
            return Done(output={"user": _next_user(ctx)}, how="observed")
        return Absent("the pending password does not log in yet")

    @set_password.compensate
    def _restore_password(self, ctx: Ctx) -> StepOutcome:
        if ctx.params.strategy == "alternating":
            return Done(output={"restored": "nothing: the user in use was not changed"})
        current = _sm(ctx).get_value(_secret_id(ctx), stage=CURRENT)
        user, password = str(current["username"]), str(current["password"])
        db = _db(ctx)
        if not db.can_login(user, password):
            db.set_password(user, password)
        return Done(output={"restored": user})

    @step(rollback=Rollback.NONE, timeout=30.0, idempotent="it only logs in", description="testSecret: log in")
    def test_login(self, ctx: Ctx) -> StepOutcome:
        pending = _sm(ctx).get_value(_secret_id(ctx), version_id=token(ctx.intent.id))
        if not _db(ctx).can_login(_next_user(ctx), str(pending["password"])):
            raise PermanentError(
                f"{_next_user(ctx)} cannot log in with the pending password",
                guidance="compensate to restore the current password, then look at pg_hba.conf and the role",
            )
        return Done(output={"login": "ok"})

    @step(
        rollback=Rollback.NONE,
        timeout=60.0,
        idempotent="it looks at the version labels before moving any",
        description="finishSecret: AWSCURRENT to the new version, AWSPENDING cleared",
    )
    def finish(self, ctx: Ctx) -> StepOutcome:
        sm, secret, version = _sm(ctx), _secret_id(ctx), token(ctx.intent.id)
        stages = _stages(sm, secret)
        if CURRENT not in stages.get(version, ()):
            sm.promote(secret, version, _current_version(stages))
            stages = _stages(sm, secret)
        if PENDING in stages.get(version, ()):
            sm.remove_pending(secret, version)
        return Done(output={"current": version})

    @postcondition("AWSCURRENT is the new version, and no AWSPENDING label is left behind")
    def secret_finished(self, ctx: Ctx) -> Evidence:
        stages = _stages(_sm(ctx), _secret_id(ctx))
        pending = [v for v, s in stages.items() if PENDING in s]
        ok = _current_version(stages) == token(ctx.intent.id) and not pending
        return Evidence(ok, {"current": _current_version(stages), "pending": pending})

    @postcondition("the database accepts the password AWSCURRENT holds")
    def database_agrees(self, ctx: Ctx) -> Evidence:
        current = _sm(ctx).get_value(_secret_id(ctx), stage=CURRENT)
        user = str(current.get("username"))
        return Evidence(_db(ctx).can_login(user, str(current.get("password"))), {"user": user})

    @postcondition("single strategy: the previous password is refused")
    def old_refused(self, ctx: Ctx) -> Evidence:
        if ctx.params.strategy == "alternating":
            return Evidence(True, {"previous": "still valid by design (alternating)"})
        sm, secret = _sm(ctx), _secret_id(ctx)
        if not any(PREVIOUS in s for s in _stages(sm, secret).values()):
            return Evidence(False, {"previous": "no AWSPREVIOUS version"})
        previous = sm.get_value(secret, stage=PREVIOUS)
        refused = not _db(ctx).can_login(str(previous.get("username")), str(previous.get("password")))
        return Evidence(refused, {"previous_refused": refused})
