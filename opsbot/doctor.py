"""`opsbot doctor`: check a real installation, one line per check, nothing secret printed.

Settings, the config file, every `dsn_env` variable, the intent store and its schema revision, Slack (`auth.test`
and the scopes the token was granted) and AWS (`sts get-caller-identity`). The network checks run side by side,
each bounded by the timeout, so an unreachable host costs seconds, not minutes.
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import boto3
import sqlalchemy as sa
import yaml
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from pydantic import ValidationError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from opsbot.settings import Settings, load_config
from store.migrate import SchemaState, schema_state
from workflows.config import OpsConfig
from workflows.errors import ConfigError
from workflows.logs import configure_logging, parse_levels
from workflows.redaction import MASK, redact_text

# The bot scopes manifest.yml asks for. The manifest is not in the wheel, so the list is kept here (a test holds
# the two together); `opsbot doctor --manifest PATH` reads them from a manifest file instead.
MANIFEST_BOT_SCOPES = (
    "commands",
    "chat:write",
    "chat:write.public",
    "channels:history",
    "groups:history",
    "usergroups:read",
)
_REVOKED = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"})


class Status(StrEnum):
    OK = "ok"
    FAIL = "FAIL"
    SKIP = "skip"


@dataclass(frozen=True)
class Finding:
    """The outcome of one check: what was looked at and, when it failed, why and what to do."""

    check: str
    status: Status
    detail: str

    @property
    def failed(self) -> bool:
        return self.status is Status.FAIL

    def line(self) -> str:
        return f"{self.status.value:<4}  {self.check:<12}  {self.detail}"


def ok(check: str, detail: str) -> Finding:
    return Finding(check, Status.OK, detail)


def fail(check: str, detail: str) -> Finding:
    return Finding(check, Status.FAIL, detail)


def skip(check: str, detail: str) -> Finding:
    return Finding(check, Status.SKIP, detail)


def manifest_bot_scopes(path: Path) -> tuple[str, ...]:
    """The bot scopes a Slack app manifest asks for (`oauth_config.scopes.bot`)."""
    try:
        raw = yaml.safe_load(path.read_text())
        scopes = raw["oauth_config"]["scopes"]["bot"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read the bot scopes from {path}: {exc}") from None
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise ConfigError(f"{path}: oauth_config.scopes.bot is not a list of scope names")
    return tuple(scopes)


def diagnose(scopes: Iterable[str] = MANIFEST_BOT_SCOPES, timeout: float = 5.0) -> list[Finding]:
    """Every check's finding for this process's environment, in a fixed order, any secret value masked."""
    environ = os.environ
    settings, first = check_settings()
    findings = [first]
    config: OpsConfig | None = None
    if settings is None:
        findings.append(skip("config", "settings did not parse"))
    else:
        configure_logging(settings.log_level)  # parsed by check_settings; libraries stay at WARNING
        config, found = check_config(settings.config)
        findings.append(found)
    findings += check_dsn_env(config, environ) if config else [skip("dsn_env", "config did not parse")]
    if settings is None:
        later = ("store", "migrations", "slack secret", "slack", "slack scopes", "aws")
        findings += [skip(name, "settings did not parse") for name in later]
    else:
        regions = sorted({env.aws_region for env in config.environments.values()}) if config else []
        findings += concurrently(
            {
                "store": lambda: check_store(settings.database_url, timeout),
                "slack": lambda: check_slack(settings, tuple(scopes), timeout),
                "aws": lambda: check_aws(settings.aws_endpoint_url, regions or [_default_region(environ)], timeout),
            },
            timeout,
        )
    hidden = _secrets(settings, config, environ)
    return [Finding(f.check, f.status, _one_line(_masked(f.detail, hidden))) for f in findings]


# --- settings, config, dsn_env -------------------------------------------------------------------------------


def check_settings() -> tuple[Settings | None, Finding]:
    """The OPSBOT_* (and SLACK_*, AWS_ENDPOINT_URL) variables parse; a bad value is named, never printed."""
    try:
        settings = Settings()
    except ValidationError as exc:  # its messages name the variable and the rule; the input is left out
        fields = "; ".join(f"{_variable(e['loc'])}: {e['msg']}" for e in exc.errors())
        return None, fail("settings", f"{fields}: fix the variable in the service's environment file")
    try:
        parse_levels(settings.log_level)
    except ConfigError as exc:
        return None, fail("settings", f"{exc}: fix it in the service's environment file")
    store = _display_url(settings.database_url)
    return settings, ok("settings", f"environment parses: store {store}, config {settings.config}")


def _variable(loc: tuple[int | str, ...]) -> str:
    name = "_".join(map(str, loc))
    return name if name.isupper() else f"OPSBOT_{name.upper()}"


def check_config(path: Path) -> tuple[OpsConfig | None, Finding]:
    """The config file exists and parses (environments, roles, policies, digests)."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        return None, fail("config", f"{exc}: fix it (see opsbot.example.yml) or point OPSBOT_CONFIG at the file")
    except OSError as exc:
        return None, fail("config", f"cannot read {path}: {exc.strerror}: check the file's owner and mode")
    counts = ", ".join(
        (
            f"{_count(len(config.environments), 'environment')} ({', '.join(sorted(config.environments))})",
            _count(len(config.roles), "role"),
            _count(len(config.policies), "policy", "policies"),
            _count(len(config.digests), "digest"),
        )
    )
    return config, ok("config", f"{path} parses: {counts}")


def _count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def dsn_vars(config: OpsConfig) -> dict[str, list[str]]:
    """Each `dsn_env` variable the config names, with the `environment/database` entries that use it."""
    used: dict[str, list[str]] = {}
    for env_name, env in sorted(config.environments.items()):
        for db_name, db in sorted(env.databases.items()):
            used.setdefault(db.dsn_env, []).append(f"{env_name}/{db_name}")
    return used


def check_dsn_env(config: OpsConfig, environ: Mapping[str, str]) -> list[Finding]:
    """Every variable a database's `dsn_env` names is set and not empty (its value is never printed)."""
    used = dsn_vars(config)
    if not used:
        return [ok("dsn_env", "no database in the config names a dsn_env")]
    return [
        ok("dsn_env", f"{var} is set (for {', '.join(where)})")
        if environ.get(var, "").strip()
        else fail("dsn_env", f"{var} is not set (for {', '.join(where)}): put the DSN in the service's environment")
        for var, where in used.items()
    ]


# --- the store -----------------------------------------------------------------------------------------------


def check_store(url: str, timeout: float) -> list[Finding]:
    """The intent store answers, and its schema is at the revision this release's migrations end at."""
    shown = _display_url(url)
    try:
        state = schema_state(url, connect_timeout=timeout)
    except (sa.exc.DBAPIError, sqlite3.Error) as exc:
        reason = _first_line(exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc)
        return [
            fail(
                "store",
                f"{shown} does not answer ({reason}): check OPSBOT_DATABASE_URL and that the server is up "
                "(a new store is created by `opsbot db upgrade`)",
            ),
            skip("migrations", "the store does not answer"),
        ]
    return [ok("store", f"{shown} answers"), _migrations(state)]


def _migrations(state: SchemaState) -> Finding:
    heads = ", ".join(state.heads)
    if state.at_head:
        return ok("migrations", f"schema at head ({heads})")
    if state.unknown:
        return fail(
            "migrations",
            f"the store is at {', '.join(state.unknown)}, which this release does not know "
            "(a newer opsbot migrated it): deploy that release or a newer one",
        )
    if not state.current:
        return fail("migrations", f"the store has no schema (this release needs {heads}): run `opsbot db upgrade`")
    return fail(
        "migrations",
        f"the store is at {', '.join(state.current)}, this release needs {heads}: run `opsbot db upgrade` "
        "before starting this release",
    )


# --- Slack ---------------------------------------------------------------------------------------------------


def check_slack(settings: Settings, scopes: tuple[str, ...], timeout: float) -> list[Finding]:
    """The signing secret is set; the bot token answers auth.test and holds every scope the manifest asks for."""
    findings = [
        ok("slack secret", "SLACK_SIGNING_SECRET is set")
        if settings.slack_signing_secret is not None
        else fail("slack secret", "SLACK_SIGNING_SECRET is not set: copy the Signing Secret from Basic Information")
    ]
    if settings.slack_bot_token is None:
        missing = "SLACK_BOT_TOKEN is not set: copy the Bot User OAuth Token (xoxb-…) from OAuth & Permissions"
        return [*findings, fail("slack", missing), skip("slack scopes", "no token to check")]
    base = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    client = WebClient(
        token=settings.slack_bot_token.get_secret_value(), base_url=base, timeout=max(math.ceil(timeout), 1)
    )
    try:
        answer = client.auth_test()
    except SlackApiError as exc:
        error = str(exc.response.get("error") or "unknown error")
        hint = (
            "the token is wrong or was revoked: copy the Bot User OAuth Token (xoxb-…) from OAuth & Permissions "
            "into SLACK_BOT_TOKEN (reinstall the app if it was revoked)"
            if error in _REVOKED
            else "see https://api.slack.com/methods/auth.test#errors"
        )
        return [
            *findings,
            fail("slack", f"auth.test refused the token ({error}): {hint}"),
            skip("slack scopes", "auth.test failed"),
        ]
    except OSError as exc:  # connection refused, DNS, TLS, timeouts (urllib's errors are OSErrors)
        return [
            *findings,
            fail("slack", f"no answer from {base} ({_first_line(exc)}): check egress to slack.com"),
            skip("slack scopes", "Slack did not answer"),
        ]
    who = f"bot {answer.get('user')} ({answer.get('user_id')}) in {answer.get('team')} ({answer.get('team_id')})"
    findings.append(ok("slack", f"auth.test answers: {who}"))
    headers = {str(k).lower(): str(v) for k, v in (answer.headers or {}).items()}
    return [*findings, _scopes(headers.get("x-oauth-scopes"), scopes)]


def _scopes(granted_header: str | None, wanted: tuple[str, ...]) -> Finding:
    if granted_header is None:
        return fail("slack scopes", "Slack did not say which scopes the token has (no x-oauth-scopes header)")
    granted = {s.strip() for s in granted_header.split(",") if s.strip()}
    missing = [s for s in wanted if s not in granted]
    if missing:
        return fail(
            "slack scopes",
            f"the token lacks {', '.join(missing)} (of the {len(wanted)} bot scopes manifest.yml asks for): "
            "add them under OAuth & Permissions (or update the app from manifest.yml) and reinstall the app",
        )
    return ok("slack scopes", f"the token has the {len(wanted)} bot scopes manifest.yml asks for")


# --- AWS -----------------------------------------------------------------------------------------------------


def check_aws(endpoint_url: str | None, regions: list[str], timeout: float) -> list[Finding]:
    """The credentials the service runs with answer `sts get-caller-identity` in each configured region."""
    config = BotoConfig(connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 1})
    findings = []
    for region in regions:
        sts: Any = boto3.session.Session().client("sts", region_name=region, endpoint_url=endpoint_url, config=config)
        try:
            who = sts.get_caller_identity()
        except NoCredentialsError:
            findings.append(
                fail(
                    "aws",
                    f"{region}: no AWS credentials found: give the service a role (instance profile, task role), "
                    "or set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                )
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "unknown")
            findings.append(
                fail("aws", f"{region}: AWS refused the credentials ({code}): check the key, its expiry or the role")
            )
        except BotoCoreError as exc:
            where = endpoint_url or f"STS in {region}"
            findings.append(fail("aws", f"{region}: no answer from {where} ({exc}): check egress to AWS"))
        else:
            findings.append(ok("aws", f"{region}: sts get-caller-identity answers as {who.get('Arn')}"))
    return findings


def _default_region(environ: Mapping[str, str]) -> str:
    return environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"


# --- running, bounding, masking ------------------------------------------------------------------------------


def concurrently(checks: Mapping[str, Callable[[], list[Finding]]], timeout: float) -> list[Finding]:
    """Run the checks side by side; one that outlives its timeout (plus grace) or raises is one FAIL line."""
    results: dict[str, list[Finding]] = {}

    def run(name: str, check: Callable[[], list[Finding]]) -> None:
        try:
            results[name] = check()
        except Exception as exc:  # a doctor reports what broke; it does not crash on it
            results[name] = [fail(name, f"unexpected {type(exc).__name__}: {_first_line(exc)}")]

    threads = {
        name: threading.Thread(target=run, args=(name, check), name=f"doctor-{name}", daemon=True)
        for name, check in checks.items()
    }
    for thread in threads.values():
        thread.start()
    grace = 2 * timeout + 5  # the clients' own timeouts fire first; this bounds what they do not cover (DNS)
    for thread in threads.values():
        thread.join(grace)
    found: list[Finding] = []
    for name in checks:
        found += results.get(name) or [fail(name, f"no answer within {grace:g} s: check the network path")]
    return found


def _display_url(url: str) -> str:
    """The store's URL with its password masked."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(OPSBOT_DATABASE_URL is not a database URL)"


def _first_line(exc: BaseException | None) -> str:
    text = str(exc or "").strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _secrets(settings: Settings | None, config: OpsConfig | None, environ: Mapping[str, str]) -> list[str]:
    """Every secret value this process knows, to mask wherever one would appear."""
    values = [environ.get(name, "") for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")]
    if settings is not None:
        for secret in (settings.slack_bot_token, settings.slack_signing_secret, settings.slack_app_token):
            values.append(secret.get_secret_value() if secret is not None else "")
        values.append(_password(settings.database_url))
    if config is not None:
        for var in dsn_vars(config):
            values += [environ.get(var, ""), _password(environ.get(var, ""))]
    return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)


def _password(url: str) -> str:
    try:
        return sa.make_url(url).password or ""
    except sa.exc.ArgumentError:
        return ""


def _one_line(text: str) -> str:
    """A multi-line reason (a config error lists each problem on its own line) as one line."""
    first, *rest = [part.strip() for part in text.splitlines() if part.strip()] or [""]
    return " ".join([first, "; ".join(rest)]) if rest else first


def _masked(line: str, secrets: list[str]) -> str:
    for secret in secrets:
        line = line.replace(secret, MASK)
    return redact_text(line)
