"""`opsbot doctor` against the fake Slack, moto and PostgreSQL: healthy, then one broken piece at a time."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
import yaml

from fakeslack import FakeSlack, Workspace
from opsbot.doctor import MANIFEST_BOT_SCOPES, manifest_bot_scopes
from store.db import make_engine
from store.migrate import code_heads, upgrade
from tests.conftest import CONFIG

MANIFEST = Path(__file__).resolve().parent.parent / "manifest.yml"
TOKEN = "xoxb-doctor-0123456789-canarytoken"
SIGNING = "doctor-signing-secret-canary"
DB_PASSWORD = "db-password-canary"
DSN_PASSWORD = "dsn-password-canary"
AWS_SECRET = "aws-secret-key-canary"
SECRETS = (TOKEN, SIGNING, DB_PASSWORD, DSN_PASSWORD, AWS_SECRET)
CHECKS = ["settings", "config", "dsn_env", "store", "migrations", "slack secret", "slack", "slack scopes", "aws"]


@dataclass
class Installation:
    """A working installation's environment, and `opsbot doctor` run against it with some variables changed."""

    env: dict[str, str]
    tmp_path: Path
    server_url: str
    aws: str
    fake: FakeSlack

    def doctor(self, *args: str, **changes: str | None) -> subprocess.CompletedProcess[str]:
        env = {**self.env, **{k: v for k, v in changes.items() if v is not None}}
        for name in (k for k, v in changes.items() if v is None):
            env.pop(name, None)
        return subprocess.run(
            [sys.executable, "-m", "opsbot.cli", "doctor", *args], env=env, capture_output=True, text=True, timeout=90
        )


def _with_password(url: str, password: str) -> str:
    return sa.make_url(url).set(password=password).render_as_string(hide_password=False)


@contextmanager
def database(server_url: str, revision: str | None) -> Iterator[str]:
    """A database of its own, migrated to `revision` (None: left empty), with a password in its URL."""
    name = f"opsbot_doctor_{uuid.uuid4().hex[:8]}"
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = _with_password(server_url.rsplit("/", 1)[0] + f"/{name}", DB_PASSWORD)  # trust auth ignores it
    try:
        if revision is not None:
            upgrade(url, revision)
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="module")
def migrated_db(pg_server_url: str) -> Iterator[str]:
    with database(pg_server_url, "head") as url:
        yield url


@pytest.fixture
def installation(tmp_path: Path, aws: str, pg_server_url: str, migrated_db: str) -> Iterator[Installation]:
    config = tmp_path / "opsbot.yml"
    config.write_text(yaml.safe_dump(CONFIG))
    with FakeSlack(TOKEN, SIGNING) as fake:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSBOT_", "SLACK_", "AWS_"))}
        env.update(
            OPSBOT_DATABASE_URL=migrated_db,
            OPSBOT_CONFIG=str(config),
            SLACK_BOT_TOKEN=TOKEN,
            SLACK_SIGNING_SECRET=SIGNING,
            OPSBOT_SLACK_API_URL=fake.api_url,
            AWS_ENDPOINT_URL=aws,
            AWS_ACCESS_KEY_ID="AKIDDOCTORTEST",
            AWS_SECRET_ACCESS_KEY=AWS_SECRET,
            AWS_DEFAULT_REGION="us-east-1",
            BILLING_DSN=f"postgresql://app:{DSN_PASSWORD}@billing.internal/billing",
        )
        yield Installation(env, tmp_path, pg_server_url, aws, fake)


def lines(result: subprocess.CompletedProcess[str]) -> dict[str, list[str]]:
    """The doctor's lines by check name (a check may print one line per region or variable)."""
    found: dict[str, list[str]] = {}
    for line in result.stdout.splitlines()[:-1]:
        status, check = line[:4].strip(), line[6:18].strip()
        found.setdefault(check, []).append(f"{status} {line[20:]}")
    return found


def failures(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    return {
        check: " ".join(found) for check, found in lines(result).items() if any(x.startswith("FAIL") for x in found)
    }


def assert_no_secret(result: subprocess.CompletedProcess[str], *more: str) -> None:
    printed = result.stdout + result.stderr
    for secret in (*SECRETS, *more):
        assert secret not in printed, secret


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_healthy_installation_passes_every_check(installation: Installation) -> None:
    """Settings, config, dsn_env, store, schema, Slack, scopes and AWS each print one ok line; the exit is 0."""
    result = installation.doctor()
    assert result.returncode == 0, result.stdout + result.stderr
    found = lines(result)
    assert list(found) == CHECKS
    assert all(line.startswith("ok ") for check in found.values() for line in check), result.stdout
    assert result.stdout.splitlines()[-1] == f"{len(CHECKS)} ok"
    assert f"at head ({', '.join(code_heads())})" in found["migrations"][0]
    assert "U0BOT0001" in found["slack"][0] and "arn:aws:" in found["aws"][0]
    assert f"{DB_PASSWORD}" not in result.stdout and ":***@" in found["store"][0]
    assert_no_secret(result)


Breakage = Callable[[Installation], dict[str, str | None]]


def _bad_yaml(i: Installation) -> dict[str, str | None]:
    (i.tmp_path / "broken.yml").write_text("environments: {prod: [unclosed\n")
    return {"OPSBOT_CONFIG": str(i.tmp_path / "broken.yml")}


def _unknown_key(i: Installation) -> dict[str, str | None]:
    (i.tmp_path / "typo.yml").write_text(yaml.safe_dump({**CONFIG, "polices": {}}))
    return {"OPSBOT_CONFIG": str(i.tmp_path / "typo.yml")}


def _closed_store(i: Installation) -> dict[str, str | None]:
    return {"OPSBOT_DATABASE_URL": f"postgresql+psycopg://opsbot:{DB_PASSWORD}@127.0.0.1:{closed_port()}/opsbot"}


def _bad_token(i: Installation) -> dict[str, str | None]:
    return {"SLACK_BOT_TOKEN": "xoxb-revoked-canary-0000"}


def _closed_slack(i: Installation) -> dict[str, str | None]:
    return {"OPSBOT_SLACK_API_URL": f"http://127.0.0.1:{closed_port()}/api/"}


def _closed_aws(i: Installation) -> dict[str, str | None]:
    return {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port()}"}


def _no_aws_credentials(i: Installation) -> dict[str, str | None]:
    nowhere = str(i.tmp_path / "no-such-file")
    return {
        "AWS_ACCESS_KEY_ID": None,
        "AWS_SECRET_ACCESS_KEY": None,
        "AWS_SHARED_CREDENTIALS_FILE": nowhere,
        "AWS_CONFIG_FILE": nowhere,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.mark.parametrize(
    ("breakage", "check", "message"),
    [
        (_bad_yaml, "config", "is not valid YAML"),
        (_unknown_key, "config", "polices"),
        (lambda i: {"OPSBOT_CONFIG": str(i.tmp_path / "missing.yml")}, "config", "not found (set OPSBOT_CONFIG)"),
        (lambda i: {"BILLING_DSN": None}, "dsn_env", "BILLING_DSN is not set (for prod/billing)"),
        (lambda i: {"BILLING_DSN": "  "}, "dsn_env", "BILLING_DSN is not set"),
        (_closed_store, "store", "does not answer (connection failed"),
        (lambda i: {"OPSBOT_DATABASE_URL": f"sqlite:///{i.tmp_path}/none.db"}, "store", "unable to open database"),
        (_bad_token, "slack", "auth.test refused the token (invalid_auth): the token is wrong or was revoked"),
        (lambda i: {"SLACK_BOT_TOKEN": None}, "slack", "SLACK_BOT_TOKEN is not set"),
        (lambda i: {"SLACK_SIGNING_SECRET": None}, "slack secret", "SLACK_SIGNING_SECRET is not set"),
        (_closed_slack, "slack", "no answer from http://127.0.0.1:"),
        (_closed_aws, "aws", "us-east-1: no answer from http://127.0.0.1:"),
        (_no_aws_credentials, "aws", "us-east-1: no AWS credentials found"),
        (lambda i: {"OPSBOT_LEASE_SECONDS": "-1"}, "settings", "OPSBOT_LEASE_SECONDS: Input should be greater than 0"),
        (lambda i: {"OPSBOT_LOG_LEVEL": "LOUD"}, "settings", "'LOUD' is not a level"),
    ],
    ids=[
        "config-not-yaml",
        "config-unknown-key",
        "config-missing",
        "dsn-env-unset",
        "dsn-env-empty",
        "store-unreachable",
        "store-sqlite-missing",
        "slack-token-invalid",
        "slack-token-unset",
        "slack-signing-secret-unset",
        "slack-unreachable",
        "aws-unreachable",
        "aws-no-credentials",
        "settings-invalid",
        "log-level-invalid",
    ],
)
def test_one_broken_piece_is_one_specific_fail(
    installation: Installation, breakage: Breakage, check: str, message: str
) -> None:
    """Each broken piece gives a FAIL line on its own check, saying what is wrong, and exit 1; nothing secret shows."""
    changes = breakage(installation)
    result = installation.doctor(**changes)
    assert result.returncode == 1, result.stdout + result.stderr
    failed = failures(result)
    assert list(failed) == [check], result.stdout
    assert message in failed[check], result.stdout
    assert "Traceback" not in result.stderr
    assert_no_secret(result, *(v for v in changes.values() if v and ("canary" in v)))


def test_a_store_not_migrated_says_to_run_db_upgrade(installation: Installation) -> None:
    """An empty database and one behind this release's head each fail the schema check, naming the revisions."""
    with database(installation.server_url, None) as empty:
        result = installation.doctor(OPSBOT_DATABASE_URL=empty)
    assert result.returncode == 1 and list(failures(result)) == ["migrations"], result.stdout
    assert "the store has no schema" in failures(result)["migrations"]
    assert "run `opsbot db upgrade`" in failures(result)["migrations"]
    with database(installation.server_url, "0001") as behind:
        result = installation.doctor(OPSBOT_DATABASE_URL=behind)
    assert list(failures(result)) == ["migrations"], result.stdout
    assert f"the store is at 0001, this release needs {', '.join(code_heads())}" in failures(result)["migrations"]
    assert_no_secret(result)


def test_a_store_password_refused_is_reported_without_the_password(
    installation: Installation, scram_pg_dsn: str
) -> None:
    """A server that refuses the password fails the store check with its reason; the password is not printed."""
    wrong = _with_password(scram_pg_dsn.replace("postgresql://", "postgresql+psycopg://"), DB_PASSWORD)
    result = installation.doctor(OPSBOT_DATABASE_URL=wrong)
    assert list(failures(result)) == ["store"], result.stdout
    assert "password authentication failed" in failures(result)["store"]
    assert_no_secret(result)


def test_a_token_missing_a_scope_names_the_scope(installation: Installation) -> None:
    """A token installed without a scope the manifest asks for fails the scope check, naming what is missing."""
    granted = tuple(s for s in MANIFEST_BOT_SCOPES if s != "groups:history")
    with FakeSlack(TOKEN, SIGNING, workspace=Workspace(scopes=granted)) as narrow:
        result = installation.doctor(OPSBOT_SLACK_API_URL=narrow.api_url)
    assert result.returncode == 1 and list(failures(result)) == ["slack scopes"], result.stdout
    assert "the token lacks groups:history" in failures(result)["slack scopes"]
    assert "reinstall the app" in failures(result)["slack scopes"]


def test_aws_refusing_the_credentials_is_a_fail(installation: Installation) -> None:
    """With IAM authentication on, moto refuses an unknown access key and the doctor says so."""
    previous = requests.post(f"{installation.aws}/moto-api/reset-auth", data=b"0", timeout=10).json()
    try:
        result = installation.doctor()
    finally:
        restore = str(previous["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]).encode()
        requests.post(f"{installation.aws}/moto-api/reset-auth", data=restore, timeout=10)
    assert result.returncode == 1 and list(failures(result)) == ["aws"], result.stdout
    assert "AWS refused the credentials (InvalidClientTokenId)" in failures(result)["aws"]
    assert_no_secret(result)


def test_hosts_that_never_answer_fail_within_the_timeout(installation: Installation) -> None:
    """A store, Slack and AWS that accept connections but never answer each fail, checked side by side, quickly."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # the kernel completes handshakes; nobody ever reads or answers
        port = silent.getsockname()[1]
        started = time.monotonic()
        result = installation.doctor(
            "--timeout",
            "1",
            OPSBOT_DATABASE_URL=f"postgresql+psycopg://opsbot:{DB_PASSWORD}@127.0.0.1:{port}/opsbot",
            OPSBOT_SLACK_API_URL=f"http://127.0.0.1:{port}/api/",
            AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        )
        elapsed = time.monotonic() - started
    assert result.returncode == 1 and list(failures(result)) == ["store", "slack", "aws"], result.stdout
    assert elapsed < 20, elapsed  # the interpreter's start-up included; each check waits about a second
    assert "timeout" in failures(result)["store"].lower()
    assert "timed out" in failures(result)["slack"].lower() and "timeout" in failures(result)["aws"].lower()
    assert_no_secret(result)


def test_the_built_in_scopes_are_the_manifests() -> None:
    """The scope list the doctor checks (the manifest is not in the wheel) is exactly manifest.yml's bot scopes."""
    assert manifest_bot_scopes(MANIFEST) == MANIFEST_BOT_SCOPES


def test_manifest_option_reads_the_scopes_from_a_file(installation: Installation) -> None:
    """`--manifest` checks the token against that manifest's bot scopes instead of the built-in list."""
    raw = yaml.safe_load(MANIFEST.read_text())
    raw["oauth_config"]["scopes"]["bot"].append("users:read")
    wider = installation.tmp_path / "manifest.yml"
    wider.write_text(yaml.safe_dump(raw))
    result = installation.doctor("--manifest", str(wider))
    assert list(failures(result)) == ["slack scopes"], result.stdout
    wanted = len(MANIFEST_BOT_SCOPES) + 1
    assert f"the token lacks users:read (of the {wanted} bot scopes" in failures(result)["slack scopes"]


# --- the fake Slack's side: scopes as Slack reports and enforces them ---------------------------------------


def test_the_fake_reports_the_granted_scopes_like_slack() -> None:
    """Every authenticated answer carries `x-oauth-scopes`, the bot token's granted scopes, comma-separated."""
    with FakeSlack(TOKEN, SIGNING) as fake:
        reply = requests.post(f"{fake.api_url}auth.test", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert reply.json()["ok"] is True
    assert reply.headers["x-oauth-scopes"].split(",") == list(MANIFEST_BOT_SCOPES)


def test_the_fake_refuses_a_method_whose_scope_was_not_granted() -> None:
    """Without chat:write, chat.postMessage answers missing_scope naming the needed scope, as Slack does."""
    granted = tuple(s for s in MANIFEST_BOT_SCOPES if s != "chat:write")
    with FakeSlack(TOKEN, SIGNING, workspace=Workspace(scopes=granted)) as fake:
        reply = requests.post(
            f"{fake.api_url}chat.postMessage",
            json={"channel": "C0OPS0001", "text": "hi"},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        assert fake.messages("C0OPS0001") == []
    assert reply.json() == {
        "ok": False,
        "error": "missing_scope",
        "needed": "chat:write",
        "provided": ",".join(granted),
    }
