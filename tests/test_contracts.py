"""Structural contracts: import layering, schema migrations, configuration, the registry."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from store.db import make_engine
from store.tables import metadata
from tests.conftest import CONFIG
from workflows.config import parse_config
from workflows.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_engine_never_imports_slack_boto3_or_psycopg() -> None:
    """import-linter's contracts hold: the engine talks to the outside only through its Protocols."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--config", str(ROOT / ".importlinter")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


def test_migrations_produce_exactly_the_models_schema(db_url: str) -> None:
    """Alembic's head and the SQLModel tables agree: autogenerate finds nothing to change."""
    engine = make_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []


def test_config_rejects_unknown_keys_with_their_path() -> None:
    """A typo in the config names the key and where it is."""
    bad = {**CONFIG, "environments": {"prod": {"aws_region": "us-east-1", "incident_chanel": "C1"}}}
    with pytest.raises(ConfigError, match=r"environments\.prod\.incident_chanel: unknown key"):
        parse_config(bad)


def test_config_refuses_a_dsn_where_an_env_var_name_belongs() -> None:
    """Secrets never live in the config: a DSN given as dsn_env is rejected without echoing it."""
    bad = {**CONFIG, "environments": {"prod": {"databases": {"b": {"dsn_env": "postgresql://u:hunter2@h/db"}}}}}
    with pytest.raises(ConfigError) as info:
        parse_config(bad)
    assert "hunter2" not in str(info.value) and "environment variable name" in str(info.value)


def test_config_policy_must_name_defined_roles() -> None:
    """A policy naming a role that does not exist is a configuration error."""
    bad = {**CONFIG, "policies": {"rds.create-replica": {"request": ["dba"], "approve": ["dba-boss"]}}}
    with pytest.raises(ConfigError, match="dba-boss"):
        parse_config(bad)


def test_the_wheel_carries_the_product_and_the_kit_but_not_the_dev_tooling() -> None:
    """The fake Slack and the dev stack are development tooling: the package list leaves them out."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]

    def shipped(package: str) -> bool:
        return any(fnmatch.fnmatch(package, pattern) for pattern in include)

    assert all(shipped(p) for p in ("opsbot", "bot.blocks", "workflows.catalog", "store", "adapters", "conformance"))
    assert not any(shipped(p) for p in ("fakeslack", "devstack", "tests", "bench"))
    assert "moto[server,rds]>=5.0,<6" in config["project"]["optional-dependencies"]["dev"]
