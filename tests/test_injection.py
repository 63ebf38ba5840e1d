"""Identifier injection: SQL in a role, database or migration name, shell metacharacters and Unicode lookalikes
are refused by the workflow's typed inputs, with the field named, before any adapter is called or anything is
stored; the same through Slack, where the answer is an ephemeral line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conformance import ScriptedAdapters, ScriptedWorld
from store.db import make_engine
from store.sql import SqlStore
from tests.conftest import create_source
from tests.slack_harness import OPS, REQUESTER, served, wait_until
from tests.test_conformance import EXAMPLES
from workflows.authoring import definition_of
from workflows.catalog import CATALOG, build_registry
from workflows.config import parse_config
from workflows.deps import Runtime
from workflows.errors import InvalidInput, PreconditionFailed
from workflows.service import OpsService

ATTACKS = {
    "SQL": ("app_user'; DROP TABLE users; --", 'billing"; DROP ROLE postgres; --', "x' OR '1'='1", "a/**/OR/**/1"),
    "shell metacharacters": ("$(reboot)", "`id`", "billing|nc", "billing&&true", "billing>out", "billing*", "~root"),
    "unicode lookalikes": ("b\u0456lling-db", "billing\u2010db", "\uff42illing", "billing\u200b", "bi\u0307lling"),
    "line breaks": ("billing\n", "billing\r\nDROP"),
}
CASES = [
    (definition_of(cls).name, field, kind, attack)
    for cls in CATALOG
    for field, value in EXAMPLES[definition_of(cls).name].params.items()
    if isinstance(value, str)
    for kind, attacks in ATTACKS.items()
    for attack in attacks
]


def _service(tmp_path: Path, url: str) -> tuple[OpsService, ScriptedWorld]:
    world = ScriptedWorld()
    environment: dict[str, Any] = {"aws_region": "us-east-1"}
    for example in EXAMPLES.values():
        example.seed(world)
        environment.update(example.environment_config(tmp_path))
    names = [definition_of(cls).name for cls in CATALOG]
    config = {
        "environments": {"prod": environment},
        "roles": {"dba": ["alice"], "lead": ["bob"]},
        "policies": {name: {"request": ["dba"], "approve": ["lead"]} for name in names},
    }
    store = SqlStore(make_engine(url))
    rt = Runtime(store=store, registry=build_registry(), config=parse_config(config), adapters=ScriptedAdapters(world))
    return OpsService(rt), world


@pytest.fixture
def service(tmp_path: Path, sqlite_url: str) -> tuple[OpsService, ScriptedWorld]:
    return _service(tmp_path, sqlite_url)


@pytest.mark.parametrize(("workflow", "field", "kind", "attack"), CASES, ids=lambda v: repr(v)[:40])
def test_an_injected_identifier_is_refused_before_any_adapter_sees_it(
    service: tuple[OpsService, ScriptedWorld], workflow: str, field: str, kind: str, attack: str
) -> None:
    ops, world = service
    before = world.calls()
    with pytest.raises(InvalidInput) as refused:
        ops.request(workflow, {**EXAMPLES[workflow].params, field: attack}, "prod", "alice")
    assert f"  {field}: " in str(refused.value), f"the answer names the field: {refused.value}"
    assert world.calls() == before, "no adapter was called"
    assert ops.list() == [], "nothing was stored"


def test_a_migration_file_named_with_sql_is_refused_at_preflight(
    service: tuple[OpsService, ScriptedWorld], tmp_path: Path
) -> None:
    """The files are the operator's, but a name that is not <version>_<slug>.sql never reaches the database."""
    ops, world = service
    (tmp_path / "migrations" / "3_x'; DROP TABLE users; --.sql").write_text("SELECT 1;\n")
    before = world.calls()
    with pytest.raises(PreconditionFailed, match=r"migration files are named <version>_<slug>\.sql"):
        ops.request("pg.migrate", dict(EXAMPLES["pg.migrate"].params), "prod", "alice")
    assert world.calls() == before
    assert ops.list() == []


def test_through_slack_the_refusal_is_an_ephemeral_line_and_nothing_changes(
    tmp_path: Path, sqlite_url: str, aws: str
) -> None:
    create_source(aws)
    with served(tmp_path, sqlite_url, aws) as b:
        text = "rds.create-replica source=billing-db replica=r1;$(reboot) env=prod"
        ack = b.driver.slash_command("/ops", text, user=REQUESTER, channel=OPS)
        assert ack.status == 200 and "Traceback" not in ack.body
        wait_until(lambda: any("replica" in t and "pattern" in t for t in b.ephemeral_texts(REQUESTER)))
        b.settle()
        assert b.services.ops.list() == []
        assert b.fake.messages(OPS) == []
