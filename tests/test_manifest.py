"""manifest.yml against the rules of Slack's manifest schema that matter here, and against the app's listeners.

The rules are restated from Slack's published schema (slackapi/manifest-schema, v1): required keys, no unknown
keys at any level we use, the slash command's pattern and lengths, URL forms and the scope list shape.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, field_validator

from bot.ids import COMMAND, ActionId, CallbackId
from tests.slack_harness import OPS, REQUESTER, Bench

MANIFEST = Path(__file__).resolve().parent.parent / "manifest.yml"
URL = r"^https?://"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Metadata(_Strict):
    schema_version: int | None = None
    min_version: int | None = None
    major_version: int | None = None
    minor_version: int | None = None


class DisplayInformation(_Strict):
    name: str = Field(min_length=1, max_length=35)
    description: str | None = Field(default=None, min_length=1, max_length=140)
    background_color: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?$")
    long_description: str | None = Field(default=None, min_length=175, max_length=4000)


class SlashCommand(_Strict):
    command: str = Field(min_length=2, max_length=32, pattern=r"^/")
    url: str | None = Field(default=None, pattern=URL, max_length=3000)
    description: str = Field(min_length=1, max_length=2000)
    usage_hint: str | None = Field(default=None, min_length=1, max_length=1000)
    should_escape: bool = False


class AppHome(_Strict):
    home_tab_enabled: bool | None = None
    messages_tab_enabled: bool | None = None
    messages_tab_read_only_enabled: bool | None = None


class BotUser(_Strict):
    display_name: str = Field(min_length=1, max_length=80)
    always_online: bool | None = None


class Features(_Strict):
    app_home: AppHome | None = None
    bot_user: BotUser | None = None
    slash_commands: list[SlashCommand] | None = Field(default=None, min_length=1, max_length=50)


class Scopes(_Strict):
    bot: list[str] = Field(default_factory=list, max_length=255)
    user: list[str] = Field(default_factory=list, max_length=255)

    @field_validator("bot", "user")
    @classmethod
    def _short(cls, scopes: list[str]) -> list[str]:
        assert all(len(s) <= 50 and re.fullmatch(r"[a-z]+(:[a-z.]+)*", s) for s in scopes), scopes
        return scopes


class OAuthConfig(_Strict):
    scopes: Scopes
    redirect_urls: list[HttpUrl] | None = None
    token_management_enabled: bool | None = None


class EventSubscriptions(_Strict):
    request_url: str | None = Field(default=None, pattern=URL, max_length=3500)
    bot_events: list[str] = Field(default_factory=list, max_length=100)
    user_events: list[str] = Field(default_factory=list, max_length=100)


class Interactivity(_Strict):
    is_enabled: bool
    request_url: str | None = Field(default=None, pattern=URL, max_length=3500)


class SettingsModel(_Strict):
    event_subscriptions: EventSubscriptions | None = None
    interactivity: Interactivity | None = None
    org_deploy_enabled: bool | None = None
    socket_mode_enabled: bool | None = None
    token_rotation_enabled: bool | None = None


class Manifest(_Strict):
    metadata: Metadata | None = Field(default=None, alias="_metadata")
    display_information: DisplayInformation
    features: Features | None = None
    oauth_config: OAuthConfig | None = None
    settings: SettingsModel | None = None


def manifest() -> Manifest:
    return Manifest.model_validate(yaml.safe_load(MANIFEST.read_text()))


def test_manifest_follows_the_schema_rules() -> None:
    """Required keys present, no unknown keys, lengths and patterns as Slack's schema states."""
    m = manifest()
    assert m.features and m.features.slash_commands and m.oauth_config and m.settings


def test_schema_rules_catch_mistakes() -> None:
    """The rules fail on an unknown key and a command without its slash (so the test above can fail)."""
    raw: dict[str, Any] = yaml.safe_load(MANIFEST.read_text())
    with pytest.raises(ValidationError):
        Manifest.model_validate({**raw, "feature": {}})
    bad = {**raw, "features": {**raw["features"], "slash_commands": [{"command": "ops", "description": "x"}]}}
    with pytest.raises(ValidationError):
        Manifest.model_validate(bad)


def test_manifest_declares_what_the_app_uses() -> None:
    """The /ops command, interactivity, the Home tab and its event, and the scopes for every Web API method used."""
    m = manifest()
    assert m.features and m.settings and m.oauth_config
    assert [c.command for c in m.features.slash_commands or []] == [COMMAND]
    assert m.settings.interactivity and m.settings.interactivity.is_enabled
    assert m.features.app_home and m.features.app_home.home_tab_enabled
    assert m.settings.event_subscriptions and "app_home_opened" in m.settings.event_subscriptions.bot_events
    assert {"commands", "chat:write"} <= set(m.oauth_config.scopes.bot)
    assert m.settings.socket_mode_enabled is not None


def test_every_command_event_and_action_has_a_listener(bench: Bench) -> None:
    """Each thing Slack may send us is handled: nothing gets Bolt's 404 "unhandled request"."""
    m = manifest()
    assert m.features and m.settings and m.settings.event_subscriptions
    for cmd in m.features.slash_commands or []:
        assert bench.driver.slash_command(cmd.command, "help", user=REQUESTER, channel=OPS).status == 200
    for event in m.settings.event_subscriptions.bot_events:
        assert bench.driver.event({"type": event, "user": REQUESTER, "tab": "home"}).status == 200
    for action in ActionId:
        payload = {
            "type": "block_actions",
            "user": {"id": REQUESTER, "username": "rita", "team_id": "T0FAKE001"},
            "api_app_id": "A0FAKE",
            "token": "t",
            "trigger_id": "1.2.3",
            "team": {"id": "T0FAKE001"},
            "channel": {"id": OPS},
            "actions": [
                {"action_id": action.value, "block_id": "b", "type": "button", "value": "{}", "action_ts": "1"}
            ],
        }
        assert _post(bench, payload).status == 200, action
    for callback in CallbackId:
        payload = {
            "type": "view_submission",
            "user": {"id": REQUESTER, "username": "rita", "team_id": "T0FAKE001"},
            "api_app_id": "A0FAKE",
            "token": "t",
            "team": {"id": "T0FAKE001"},
            "view": {
                "id": "V1",
                "type": "modal",
                "callback_id": callback.value,
                "private_metadata": "{}",
                "state": {"values": {}},
            },
        }
        assert _post(bench, payload).status == 200, callback


def _post(bench: Bench, payload: dict[str, Any]) -> Any:
    """A signed interaction payload, even for buttons no message shows (the listener must still answer)."""
    return bench.driver.send(
        payload["type"], urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"
    )


@pytest.fixture
def bench(tmp_path: Path, sqlite_url: str, aws: str) -> Any:
    from tests.slack_harness import served

    with served(tmp_path, sqlite_url, aws) as b:
        yield b
