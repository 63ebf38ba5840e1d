"""Process settings from the environment (OPSBOT_ prefix); the operator config file is loaded from here."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from workflows.config import OpsConfig, parse_config
from workflows.errors import ConfigError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPSBOT_", extra="ignore", populate_by_name=True)

    database_url: str = Field(
        default="sqlite:///opsbot.db", description="intent store; postgresql+psycopg://… in production"
    )
    config: Path = Field(default=Path("opsbot.yml"), description="environments, roles and policies")
    lease_seconds: float = Field(
        default=15.0,
        gt=0,
        description="executor lease: renewed every third of it; a dead replica's work is taken over when it lapses",
    )
    executor_poll_seconds: float = Field(default=1.0, gt=0, description="fallback poll; approvals wake it at once")
    approval_ttl_seconds: float = Field(default=3600.0, gt=0)
    worker_threads: int = Field(default=4, ge=1, le=32)
    reconcile_interval_seconds: float = Field(
        default=5.0, gt=0, description="at most this long between passes; it also wakes when a check comes due"
    )
    log_level: str = "INFO"
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="Prometheus /metrics on this port (`opsbot serve` has it on its own)"
    )
    metrics_host: str = Field(default="127.0.0.1", description="address the metrics port binds")
    metrics_ttl_seconds: float = Field(default=10.0, ge=0, description="how often the store's gauges are read at most")
    slack_bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_BOT_TOKEN", "OPSBOT_SLACK_BOT_TOKEN")
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "OPSBOT_SLACK_SIGNING_SECRET")
    )
    slack_app_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_APP_TOKEN", "OPSBOT_SLACK_APP_TOKEN")
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/", description="Web API base URL (the fake Slack in tests)"
    )
    slack_channel_burst: int = Field(default=3, ge=1, description="messages a channel may take at once before pacing")
    slack_channel_rate: float = Field(default=1.0, gt=0, description="sustained messages per second per channel")
    slack_timeout_seconds: float = Field(default=10.0, gt=0)
    outbox_interval_seconds: float = Field(default=0.5, gt=0)
    slack_groups_ttl_seconds: float = Field(
        default=60.0, gt=0, description="a user group's members are asked of Slack again after this long"
    )
    slack_groups_max_stale_seconds: float = Field(
        default=900.0, gt=0, description="Slack silent this long: roles made of its user groups are refused"
    )
    aws_endpoint_url: str | None = Field(
        default=None, validation_alias=AliasChoices("AWS_ENDPOINT_URL", "OPSBOT_AWS_ENDPOINT_URL")
    )


def load_config(path: Path) -> OpsConfig:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found (set OPSBOT_CONFIG)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    return parse_config(raw, source=str(path), base_dir=str(path.resolve().parent))
