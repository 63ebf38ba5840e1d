"""Property-based fuzzing of everything a stranger can send: `/ops` text, block_actions payloads, modal submissions
and the config file. Always a 200 with a clear answer (or 401/400 for a bad signature or body), never a 500 or a
traceback, and never a state change for invalid input."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.ids import ActionId, CallbackId
from tests.conftest import create_source
from tests.slack_harness import APPROVER, OPS, REQUESTER, Bench, served
from workflows.config import parse_config
from workflows.errors import ConfigError

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
USERS = st.sampled_from([REQUESTER, APPROVER, "U0NOBODY01", "", "x" * 300])
WEIRD = st.one_of(
    st.text(max_size=300),
    st.text(alphabet="=;'\"`$(){}[]<>|&\\/ \t\n%", max_size=80),
    st.sampled_from(["status", "status x[/y]", "list", "help", "rds.create-replica", "rds.create-replica env=prod"]),
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> Iterator[Bench]:
    """One served stack for the module, with one pending intent whose state must never move."""
    import os

    import requests

    from store.migrate import upgrade

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10)
    create_source(moto_endpoint)
    tmp = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{tmp / 'fuzz.db'}"
    upgrade(url)
    with served(tmp, url, moto_endpoint) as bench:
        bench.services.ops.request(
            "rds.create-replica", {"source": "billing-db", "replica": "fuzz-r1"}, "prod", REQUESTER
        )
        yield bench


def _snapshot(bench: Bench) -> list[tuple[str, int, str]]:
    return [(i.id, i.version, i.status.value) for i in bench.services.ops.list(limit=500)]


def _healthy(bench: Bench, status: int) -> None:
    assert status in (200, 400, 401), status
    assert all(a.status != 500 for a in bench.driver.acks)


@FUZZ
@given(text=WEIRD, user=USERS)
def test_any_ops_text_gets_an_answer_and_changes_nothing(stack: Bench, text: str, user: str) -> None:
    """Whatever follows `/ops`, the ack is a 200 with text, no traceback, and the store is as it was."""
    before = _snapshot(stack)
    ack = stack.driver.send(
        "slash_command",
        urlencode(
            {"command": "/ops", "text": text, "user_id": user, "channel_id": OPS, "team_id": "T0", "trigger_id": "t"}
        ),
        "application/x-www-form-urlencoded",
    )
    _healthy(stack, ack.status)
    assert "Traceback" not in ack.body
    time.sleep(0.01)
    if not text.strip().startswith("rds.create-replica "):  # the only shape that may legitimately plan something
        assert len(_snapshot(stack)) == len(before)


values = st.one_of(
    st.text(max_size=200),
    st.builds(
        lambda i, h, v: json.dumps({"i": i, "h": h, "v": v}),
        st.one_of(st.text(max_size=60), st.just("x")),
        st.one_of(st.text(max_size=80), st.just("0" * 64), st.just("")),
        st.one_of(st.integers(), st.text(max_size=5), st.none()),
    ),
)


@FUZZ
@given(action=st.one_of(st.sampled_from([a.value for a in ActionId]), st.text(max_size=40)), value=values, user=USERS)
def test_tampered_button_clicks_are_refused_and_change_nothing(
    stack: Bench, action: str, value: str, user: str
) -> None:
    """Forged intent ids, hashes, versions and action ids: 200 (or 400), a clear note, no state change."""
    before = _snapshot(stack)
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user or "U0X", "name": "x"},
        "team": {"id": "T0"},
        "channel": {"id": OPS},
        "trigger_id": "1.2.3",
        "response_url": stack.fake.issue_response_url(OPS, REQUESTER),
        "actions": [{"action_id": action, "block_id": "b", "type": "button", "value": value}],
    }
    ack = stack.driver._send_payload("block_actions", payload)
    _healthy(stack, ack.status)
    time.sleep(0.02)
    assert _snapshot(stack) == before


@FUZZ
@given(meta=st.text(max_size=300), field=st.text(max_size=100), callback=st.sampled_from([c.value for c in CallbackId]))
def test_forged_modal_submissions_change_nothing(stack: Bench, meta: str, field: str, callback: str) -> None:
    """A view_submission with made-up metadata and values is answered and changes nothing."""
    before = _snapshot(stack)
    payload = {
        "type": "view_submission",
        "user": {"id": REQUESTER, "name": "x"},
        "team": {"id": "T0"},
        "view": {
            "id": "V0",
            "type": "modal",
            "callback_id": callback,
            "private_metadata": meta,
            "state": {"values": {"source": {"value": {"type": "plain_text_input", "value": field}}}},
        },
    }
    ack = stack.driver._send_payload("view_submission", payload)
    _healthy(stack, ack.status)
    time.sleep(0.02)
    assert _snapshot(stack) == before


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(raw=json_values)
def test_any_config_document_is_accepted_or_refused_with_a_config_error(raw: Any) -> None:
    """A config file of any shape parses or fails with ConfigError, never with another exception."""
    try:
        parse_config(raw)
    except ConfigError as exc:
        assert str(exc)


@settings(max_examples=200, deadline=None)
@given(
    environments=st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.dictionaries(st.sampled_from(["aws_region", "production", "databases"]), json_values, max_size=3),
        max_size=3,
    ),
    roles=st.dictionaries(st.text(max_size=8), st.lists(st.text(max_size=8), max_size=3), max_size=3),
    policies=st.dictionaries(st.text(max_size=20), json_values, max_size=2),
)
def test_config_shaped_documents_are_accepted_or_refused_clearly(
    environments: dict[str, Any], roles: dict[str, Any], policies: dict[str, Any]
) -> None:
    """Near-valid configs (the right keys, wrong values) are refused with a ConfigError naming a path."""
    try:
        parse_config({"environments": environments, "roles": roles, "policies": policies})
    except ConfigError as exc:
        assert "invalid" in str(exc)


def test_path_for_the_readme(tmp_path: Path) -> None:
    """The example config in the repository parses."""
    import yaml

    root = Path(__file__).resolve().parent.parent
    assert parse_config(yaml.safe_load((root / "opsbot.example.yml").read_text()), base_dir=str(root)).environments
