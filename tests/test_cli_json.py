"""`opsbot intents list --json` and `intents show ID --json`: stable, documented fields for scripts."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from opsbot.cli_render import list_json, view_json
from tests.conftest import CONFIG, create_source
from workflows.deps import Runtime
from workflows.executor import Executor
from workflows.service import OpsService

README = Path(__file__).resolve().parent.parent / "README.md"
CANARY = "json-canary-s3cret"
INTENT_FIELDS = {
    "id",
    "workflow",
    "environment",
    "status",
    "verdict",
    "final",
    "needs_human",
    "status_reason",
    "requester",
    "plan_hash",
    "ticket",
    "not_before",
    "version",
    "attempts",
    "created_at",
    "updated_at",
    "started_at",
    "next_check_at",
}
SHOWN_INTENT_FIELDS = INTENT_FIELDS | {"mode", "params", "plan", "last_error", "lease_owner", "lease_expires_at"}


class Cli:
    """`opsbot` as a subprocess on a SQLite store and moto."""

    def __init__(self, tmp_path: Path, aws: str) -> None:
        config = tmp_path / "opsbot.yml"
        config.write_text(yaml.safe_dump(CONFIG))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OPSBOT_")}
        self.env.update(
            OPSBOT_DATABASE_URL=f"sqlite:///{tmp_path / 'o.db'}", OPSBOT_CONFIG=str(config), AWS_ENDPOINT_URL=aws
        )

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "opsbot.cli", *args], env=self.env, capture_output=True, text=True, timeout=120
        )

    def json(self, *args: str) -> Any:
        result = self(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)  # stdout is the document alone: logs go to stderr


@pytest.fixture
def cli(tmp_path: Path, aws: str) -> Cli:
    run = Cli(tmp_path, aws)
    assert run("db", "upgrade").returncode == 0
    return run


def utc(text: str) -> datetime:
    """An ISO 8601 timestamp in UTC, written with a Z."""
    assert text.endswith("Z"), text
    moment = datetime.fromisoformat(text)
    assert moment.utcoffset() == timedelta(0), text
    return moment


def _succeeded_intent(cli: Cli, aws: str) -> str:
    create_source(aws)
    req = cli(
        "request", "rds.create-replica", "source=billing-db", "replica=billing-db-r1", "env=prod", "--actor", "bob"
    )
    assert req.returncode == 0, req.stderr
    intent_id = req.stdout.rsplit("opsbot approve", 1)[1].split()[0]
    plan_hash = re.search(r"plan hash\s+([0-9a-f]{64})", req.stdout)
    assert plan_hash, req.stdout
    assert cli("approve", intent_id, "--plan-hash", plan_hash.group(1), "--actor", "erin").returncode == 0
    assert cli("reconcile").returncode == 0
    return intent_id


def test_show_json_gives_the_intent_its_steps_events_and_the_four_answers(cli: Cli, aws: str) -> None:
    """A succeeded intent as JSON: fields, verdict, UTC timestamps, steps with external ids, events, answers."""
    intent_id = _succeeded_intent(cli, aws)
    doc = cli.json("intents", "show", intent_id)
    assert set(doc) == {"format", "intent", "approvals", "steps", "events", "waiting_for", "answers"}
    assert doc["format"] == 1
    intent = doc["intent"]
    assert set(intent) == SHOWN_INTENT_FIELDS
    assert (intent["id"], intent["workflow"], intent["environment"]) == (intent_id, "rds.create-replica", "prod")
    assert (intent["status"], intent["verdict"], intent["final"], intent["needs_human"]) == (
        "succeeded",
        "succeeded",
        True,
        False,
    )
    assert re.fullmatch(r"[0-9a-f]{64}", intent["plan_hash"]) and intent["plan"]["workflow"] == "rds.create-replica"
    assert intent["params"]["replica"] == "billing-db-r1" and intent["requester"] == "bob"
    assert utc(intent["created_at"]) <= utc(intent["started_at"]) <= utc(intent["updated_at"])
    assert doc["approvals"]["needed"] == 1 and doc["approvals"]["approved_by"] == ["erin"]
    [decision] = doc["approvals"]["decisions"]
    assert decision["decision"] == "approve" and decision["plan_hash"] == intent["plan_hash"]
    assert [s["status"] for s in doc["steps"]] == ["succeeded"] * len(doc["steps"])
    assert doc["steps"][0]["external_ids"]["replica_id"] == "billing-db-r1"
    assert all(utc(s["started_at"]) <= utc(s["finished_at"]) for s in doc["steps"])
    kinds = [e["kind"] for e in doc["events"]]
    assert kinds[0] == "requested" and "approved" in kinds
    assert [e["seq"] for e in doc["events"]] == sorted(e["seq"] for e in doc["events"])
    assert all(e["via"] and e["via"].startswith("cli:") for e in doc["events"] if e["actor"] in ("bob", "erin"))
    answers = doc["answers"]
    assert "rds.create-replica" in answers["requested"]
    assert any("billing-db-r1" in line for line in answers["changed"])
    assert {a["action"] for a in answers["actions"]} == {"compensate"}


def test_list_json_gives_one_entry_per_intent_with_the_summary_fields(cli: Cli, aws: str) -> None:
    """`intents list --json` lists the intents with the summary fields; --status filters as the table does."""
    intent_id = _succeeded_intent(cli, aws)
    doc = cli.json("intents", "list")
    assert doc["format"] == 1
    [entry] = doc["intents"]
    assert set(entry) == INTENT_FIELDS and entry["id"] == intent_id and entry["status"] == "succeeded"
    assert cli.json("intents", "list", "--status", "failed")["intents"] == []


def test_an_empty_store_lists_an_empty_array(cli: Cli) -> None:
    """No intents is an empty list, not a table header or nothing at all."""
    assert cli.json("intents", "list") == {"format": 1, "intents": []}


def test_show_json_of_an_unknown_intent_is_an_error_on_stderr(cli: Cli) -> None:
    """An unknown id exits 2 with the reason on stderr and prints no half document on stdout."""
    result = cli("intents", "show", "nope", "--json")
    assert result.returncode == 2 and "no intent with id 'nope'" in result.stderr and result.stdout == ""


def test_json_masks_secrets_wherever_they_sit(runtime: Runtime, aws: str) -> None:
    """Secret-looking parameters, reasons, step errors, external ids and event data are masked in the document."""
    create_source(aws)
    ops = OpsService(runtime)
    intent = ops.request("rds.create-replica", {"source": "billing-db", "replica": "r1"}, "prod", "alice").intent
    ops.approve(intent.id, "bob", intent.plan_hash)
    Executor(runtime, "test").run_once()
    view = ops.show(intent.id)
    dsn = f"postgresql://app:{CANARY}@db.internal/billing"
    leaky = dataclasses.replace(
        view,
        intent=dataclasses.replace(
            view.intent,
            params={**view.intent.params, "master_password": CANARY},
            status_reason=f"could not connect to {dsn}",
            last_error=f"password={CANARY}",
        ),
        steps=(dataclasses.replace(view.steps[0], error=f"token={CANARY}", external_ids={"api_token": CANARY}),),
        events=(dataclasses.replace(view.events[0], data={"dsn": dsn, "via": "cli:alice@host"}),),
    )
    text = json.dumps(view_json(leaky)) + json.dumps(list_json([leaky.intent]))
    assert CANARY not in text
    doc = view_json(leaky)
    assert doc["intent"]["params"]["master_password"] == "***"
    assert doc["events"][0] == {**doc["events"][0], "via": "cli:alice@host", "data": {"dsn": "***"}}


def _keys(doc: dict[str, Any]) -> set[str]:
    """Every field name of the documents, the plan's and parameters' own keys left out (they are the workflow's)."""
    found: set[str] = set()
    for key, value in doc.items():
        found.add(key)
        if key in ("plan", "params", "external_ids", "data"):
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                found |= _keys(item)
    return found


def test_every_field_is_documented_in_the_readme(cli: Cli, aws: str) -> None:
    """Each field name the two documents carry appears, in backticks, in the README's `--json` section."""
    intent_id = _succeeded_intent(cli, aws)
    section = README.read_text().split("### JSON for scripts", 1)[1].split("\n## ", 1)[0]
    fields = _keys(cli.json("intents", "show", intent_id)) | _keys(cli.json("intents", "list"))
    undocumented = sorted(f for f in fields if f"`{f}`" not in section)
    assert undocumented == []
