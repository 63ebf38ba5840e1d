"""The operator-written configuration: environments, databases, roles and policies (no secrets)."""

from __future__ import annotations

import re
from datetime import time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from workflows.errors import ConfigError
from workflows.states import Action

DEFAULT_REQUEST_TTL = timedelta(days=7)  # a request nobody decides on does not wait for ever
_ENV_VAR = re.compile(r"^[A-Z][A-Z0-9_]*$")
_SLACK_ID = re.compile(r"^[A-Z0-9][A-Za-z0-9._-]{1,63}$")
# A role member that names a Slack user group: its handle, or its id (Slack's user group ids start with S).
_GROUP_HANDLE = re.compile(r"^@[a-z0-9][a-z0-9._-]{0,79}$")
_GROUP_ID = re.compile(r"^S[A-Z0-9]{8,10}$")


def is_user_group(member: str) -> bool:
    """Whether a role member names a Slack user group (`@dba-leads`, `S0614TZR7`) rather than one user."""
    return member.startswith("@") or bool(_GROUP_ID.match(member))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseRef(_Strict):
    """A database named by the environment variable that holds its DSN; the DSN itself never appears here."""

    dsn_env: str
    migrations: str | None = Field(default=None, description="pg.migrate: a directory, relative to the config file")
    secrets: dict[str, str] = Field(default_factory=dict, description="role -> Secrets Manager secret id")
    lock_timeout_seconds: float = Field(default=3.0, gt=0, le=600)
    statement_timeout_seconds: float = Field(default=60.0, gt=0, le=86400)
    max_replica_lag_seconds: float = Field(default=30.0, ge=0)

    @field_validator("dsn_env")
    @classmethod
    def _env_var_name(cls, value: str) -> str:
        if not _ENV_VAR.match(value):
            raise ValueError("must be an environment variable name such as BILLING_DSN, not a DSN")
        return value


class DigestConfig(_Strict):
    channel: str
    cron: str = "0 9 * * *"
    timezone: str = "UTC"
    stale_approval_minutes: int = Field(default=60, ge=1)


class TicketRule(_Strict):
    """A change ticket every request must carry: its id's shape, and where it lives."""

    pattern: str = Field(description="regular expression the whole ticket id must match, e.g. ^[A-Z]+-\\d+$")
    link: str | None = Field(default=None, description="URL template with {ticket}, e.g. https://jira/browse/{ticket}")
    required: bool = Field(default=True, description="false: a ticket is optional, but checked when given")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"ticket pattern {value!r} is not a regular expression: {exc}") from None
        return value

    @field_validator("link")
    @classmethod
    def _templated(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith(("https://", "http://")) or "{ticket}" not in value):
            raise ValueError(f"ticket link {value!r} must be an http(s) URL containing {{ticket}}")
        return value


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WindowRule = Literal["required", "optional"]
_CLOCK_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class MaintenanceWindow(_Strict):
    """A weekly maintenance window: on each of `days`, from `start` to `end` in `timezone` (an end at or before
    the start is on the next day: 22:00-02:00)."""

    days: tuple[Weekday, ...] = Field(min_length=1)
    start: time
    end: time
    timezone: str = "UTC"

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock_time(cls, value: Any) -> Any:
        if isinstance(value, time):
            return value
        if not isinstance(value, str) or not _CLOCK_TIME.match(value):
            # YAML reads an unquoted 12:30 as the number 750 (base 60): it must never become 00:12:30.
            raise ValueError('must be a time of day in quotes, "HH:MM" (24 h), such as "02:00"')
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value != "UTC":
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r} (an IANA name such as Europe/Berlin, or UTC)") from None
        return value

    @model_validator(mode="after")
    def _has_length(self) -> MaintenanceWindow:
        if self.start == self.end:
            raise ValueError("start and end are the same time: a window needs a length")
        return self


class Environment(_Strict):
    aws_region: str = "us-east-1"
    production: bool = Field(default=True, description="false relaxes nothing by itself; policies may then do so")
    incident_channel: str | None = None
    incident_risks: tuple[Literal["low", "medium", "high"], ...] = Field(
        default=("high",),
        description="changes of these risk levels are announced in incident_channel (linked to their plan message "
        "and updated with their outcome); the others stay in the channel they were requested in",
    )
    databases: dict[str, DatabaseRef] = Field(default_factory=dict)
    maintenance_windows: tuple[MaintenanceWindow, ...] = Field(
        default=(), description="changes here run inside these windows, unless a policy says window: optional"
    )
    ticket: TicketRule | None = Field(default=None, description="every request here carries a change ticket")
    expire_after_hours: float | None = Field(
        default=None, gt=0, description="requests here nobody approves or denies expire after this long"
    )


class ActionRule(_Strict):
    """Who may take one operator action; unset fields keep the action's default (see workflows.authorization)."""

    roles: tuple[str, ...] | None = None
    requester: bool | None = Field(default=None, description="may the intent's requester take it")
    people: int | None = Field(default=None, ge=1, le=5, description="distinct people who must agree")


class EnvironmentPolicy(_Strict):
    """A workflow's policy tightened or loosened for one environment."""

    approve: tuple[str, ...] | None = None
    approvals: int | None = Field(default=None, ge=1, le=5)
    actions: dict[Action, ActionRule] = Field(default_factory=dict)
    window: WindowRule | None = None
    scheduled_approval_ttl_hours: float | None = Field(default=None, gt=0, le=24 * 31)
    ticket: TicketRule | None = Field(default=None, description="this workflow's ticket rule here (over the env's)")
    expire_after_hours: float | None = Field(default=None, gt=0)


class Policy(_Strict):
    request: tuple[str, ...]
    approve: tuple[str, ...]
    approvals: int = Field(default=1, ge=1, le=5)
    environments: tuple[str, ...] | None = None
    actions: dict[Action, ActionRule] = Field(default_factory=dict)
    by_environment: dict[str, EnvironmentPolicy] = Field(default_factory=dict)
    expire_after_hours: float | None = Field(
        default=None, gt=0, description="a request nobody approves or denies expires after this long (default 168)"
    )
    window: WindowRule | None = Field(
        default=None,
        description="required (the default where the environment has maintenance windows): runs only inside "
        "them; optional: any time",
    )
    scheduled_approval_ttl_hours: float | None = Field(
        default=None,
        gt=0,
        le=24 * 31,
        description="how long an approval lasts when the intent it approves is scheduled for later (at least the "
        "usual approval TTL); unset: the usual TTL, so a start after it asks for approval again",
    )

    def roles_named(self) -> set[str]:
        named = {*self.request, *self.approve}
        for rules in (self.actions, *(e.actions for e in self.by_environment.values())):
            named |= {r for rule in rules.values() for r in rule.roles or ()}
        for env_policy in self.by_environment.values():
            named |= set(env_policy.approve or ())
        return named


class CliConfig(_Strict):
    """How the break-glass CLI knows who is typing: OS users mapped to the Slack ids roles are made of."""

    identities: dict[str, str] = Field(default_factory=dict, description="OS user -> Slack user id")
    actor_override: bool = Field(
        default=True, description="false: --actor is refused unless it names the caller's own mapped identity"
    )

    @field_validator("identities")
    @classmethod
    def _one_person_each(cls, identities: dict[str, str]) -> dict[str, str]:
        for os_user, identity in identities.items():
            if is_user_group(identity):
                raise ValueError(
                    f"{os_user} is mapped to the user group {identity}: map an OS user to one Slack user id"
                )
        return identities


class OpsConfig(_Strict):
    environments: dict[str, Environment]
    base_dir: str = Field(default=".", description="where relative paths (migrations) start; set from the file")
    roles: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    policies: dict[str, Policy] = Field(default_factory=dict)
    digests: tuple[DigestConfig, ...] = ()
    cli: CliConfig = Field(default_factory=CliConfig)

    @field_validator("roles")
    @classmethod
    def _members_are_users_or_groups(cls, roles: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for role, members in roles.items():
            for member in members:
                if member.startswith("@") and not _GROUP_HANDLE.match(member):
                    raise ValueError(
                        f"role {role!r} names {member!r}: a user group handle is @ and lowercase letters, digits, "
                        "'.', '-' or '_' (a user is named by id, such as U0123ABCD)"
                    )
        return roles

    @model_validator(mode="before")
    @classmethod
    def _paths_from_the_config_file(cls, raw: Any) -> Any:
        """`databases.<name>.migrations` is relative to the config file: made absolute here, once."""
        if not isinstance(raw, dict) or not isinstance(raw.get("environments"), dict):
            return raw
        base = Path(str(raw.get("base_dir") or "."))
        environments = {}
        for env_name, env in raw["environments"].items():
            if isinstance(env, dict) and isinstance(env.get("databases"), dict):
                databases = {
                    name: {**db, "migrations": str((base / db["migrations"]).resolve())}
                    if isinstance(db, dict) and db.get("migrations")
                    else db
                    for name, db in env["databases"].items()
                }
                env = {**env, "databases": databases}
            environments[env_name] = env
        return {**raw, "environments": environments}

    @model_validator(mode="after")
    def _policies_are_sound(self) -> OpsConfig:
        for workflow, policy in self.policies.items():
            for role in sorted(policy.roles_named()):
                if role not in self.roles:
                    raise ValueError(f"policy {workflow!r} names role {role!r}, which is not under roles")
            for named in (*(policy.environments or ()), *policy.by_environment):
                if named not in self.environments:
                    raise ValueError(f"policy {workflow!r} names environment {named!r}, which is not defined")
            for env_name, env in self.environments.items():
                override = policy.by_environment.get(env_name)
                applies = policy.environments is None or env_name in policy.environments
                window = (override.window if override else None) or policy.window
                if applies and window == "required" and not env.maintenance_windows:
                    raise ValueError(
                        f"policy {workflow!r} requires a maintenance window in environment {env_name!r}, which "
                        "declares none (add maintenance_windows to it, or say window: required under by_environment)"
                    )
            for env_name, env in self.environments.items():
                if not env.production or (policy.environments is not None and env_name not in policy.environments):
                    continue
                override = policy.by_environment.get(env_name)
                for action in (Action.APPROVE, Action.MARK_DONE, Action.RUN_NOW):
                    rule = (override.actions.get(action) if override else None) or policy.actions.get(action)
                    if rule is not None and rule.requester:
                        raise ValueError(
                            f"policy {workflow!r} lets the requester {action.value} alone in production environment "
                            f"{env_name!r}: nobody acts alone on a change to production"
                        )
        return self

    def user_groups(self) -> tuple[str, ...]:
        """Every Slack user group a role names, in the order they first appear."""
        return tuple(dict.fromkeys(m for members in self.roles.values() for m in members if is_user_group(m)))

    def request_ttl(self, workflow: str, environment: str) -> timedelta:
        """How long a request may wait for approval before it expires: the policy's for that environment, the
        policy's, the environment's, else a week."""
        policy = self.policies.get(workflow)
        override = policy.by_environment.get(environment) if policy else None
        env = self.environments.get(environment)
        for hours in (
            override.expire_after_hours if override else None,
            policy.expire_after_hours if policy else None,
            env.expire_after_hours if env else None,
        ):
            if hours is not None:
                return timedelta(hours=hours)
        return DEFAULT_REQUEST_TTL

    def ticket_rule(self, workflow: str, environment: str) -> TicketRule | None:
        """The change-ticket rule for `workflow` in `environment`: the policy's for that environment, else the
        environment's own, else none."""
        policy = self.policies.get(workflow)
        override = policy.by_environment.get(environment) if policy else None
        if override is not None and override.ticket is not None:
            return override.ticket
        env = self.environments.get(environment)
        return env.ticket if env else None

    def environment(self, name: str) -> Environment:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.environments)) or "none"
            raise ConfigError(f"unknown environment {name!r} (configured: {known})") from None


def parse_config(raw: Any, source: str = "configuration", base_dir: str | None = None) -> OpsConfig:
    """Validate a loaded YAML document, turning pydantic's errors into one readable message."""
    try:
        if base_dir is not None and isinstance(raw, dict):
            raw = {**raw, "base_dir": base_dir}
        return OpsConfig.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            lines.append(f"  {where}: {msg}")
        raise ConfigError(f"{source} is invalid:\n" + "\n".join(lines)) from None
