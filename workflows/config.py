"""The operator-written configuration: environments, databases, roles and policies (no secrets)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from workflows.errors import ConfigError

_ENV_VAR = re.compile(r"^[A-Z][A-Z0-9_]*$")
_SLACK_ID = re.compile(r"^[A-Z0-9][A-Za-z0-9._-]{1,63}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseRef(_Strict):
    """A database named by the environment variable that holds its DSN; the DSN itself never appears here."""

    dsn_env: str

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


class Environment(_Strict):
    aws_region: str = "us-east-1"
    incident_channel: str | None = None
    databases: dict[str, DatabaseRef] = Field(default_factory=dict)


class Policy(_Strict):
    request: tuple[str, ...]
    approve: tuple[str, ...]
    approvals: int = Field(default=1, ge=1, le=5)
    environments: tuple[str, ...] | None = None


class OpsConfig(_Strict):
    environments: dict[str, Environment]
    roles: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    policies: dict[str, Policy] = Field(default_factory=dict)
    digests: tuple[DigestConfig, ...] = ()

    @model_validator(mode="after")
    def _roles_exist(self) -> OpsConfig:
        for workflow, policy in self.policies.items():
            for role in (*policy.request, *policy.approve):
                if role not in self.roles:
                    raise ValueError(f"policy {workflow!r} names role {role!r}, which is not under roles")
            for env in policy.environments or ():
                if env not in self.environments:
                    raise ValueError(f"policy {workflow!r} names environment {env!r}, which is not defined")
        return self

    def roles_of(self, user: str) -> frozenset[str]:
        return frozenset(role for role, members in self.roles.items() if user in members)

    def environment(self, name: str) -> Environment:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.environments)) or "none"
            raise ConfigError(f"unknown environment {name!r} (configured: {known})") from None


def parse_config(raw: Any, source: str = "configuration") -> OpsConfig:
    """Validate a loaded YAML document, turning pydantic's errors into one readable message."""
    try:
        return OpsConfig.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            lines.append(f"  {where}: {msg}")
        raise ConfigError(f"{source} is invalid:\n" + "\n".join(lines)) from None
