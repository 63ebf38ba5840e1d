"""What a person does on the page, sent to `opsbot serve` exactly as Slack would send it (signed, over HTTP)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from devstack.sandbox.notices import Notices
from fakeslack import Ack, FakeSlack, SlackDriver

JSON = dict[str, Any]
COMMANDS = ("/ops",)  # the slash commands manifest.yml installs


@dataclass(frozen=True)
class Outcome:
    """The answer to the page: whether Slack would have carried the action out, and why not."""

    ok: bool
    error: str | None = None
    field_errors: dict[str, str] = field(default_factory=dict)  # a modal's response_action "errors"
    closed: bool = False  # the modal submitted was closed

    def to_json(self) -> JSON:
        return {"ok": self.ok, "error": self.error, "errors": self.field_errors, "closed": self.closed}


class Actions:
    """Turns page actions into Slack requests to the bot, and what Slack shows of their acks into notices."""

    def __init__(self, fake: FakeSlack, driver: SlackDriver, notices: Notices) -> None:
        self.fake, self.driver, self.notices = fake, driver, notices

    def message(self, user: str, channel: str, text: str) -> Outcome:
        """The composer: a slash command goes to its app; Slack itself answers anything else it cannot do here."""
        command, _, rest = text.strip().partition(" ")
        if not command.startswith("/"):
            self.notices.add(user, channel, "This sandbox sends slash commands only: try `/ops help`.", "slackbot")
            return Outcome(True)
        if command not in COMMANDS:
            self.notices.add(user, channel, f"`{command}` is not a valid command. Try `/ops help`.", "slackbot")
            return Outcome(True)
        ack = self.driver.slash_command(command, rest.strip(), user=user, channel=channel)
        failed = _failure(ack, f"{command} failed")
        if failed:
            self.notices.add(user, channel, failed, "error")
            return Outcome(False, failed)
        answer = _ack_json(ack)
        if answer.get("text") or answer.get("blocks"):
            self.notices.add(user, channel, str(answer.get("text") or ""), "ack", list(answer.get("blocks") or []))
        return Outcome(True)

    def click(
        self, user: str, channel: str, ts: str, action_id: str, block_id: str | None, value: str | None
    ) -> Outcome:
        """A button (or a menu choice) on a message or an ephemeral message in `channel`."""
        try:
            ack = self.driver.click(channel, ts, action_id, user=user, block_id=block_id, value=value)
        except (LookupError, ValueError) as exc:
            return Outcome(False, str(exc))
        return self._answered(ack, user, channel)

    def click_view(self, user: str, view_id: str, action_id: str, block_id: str | None, value: str | None) -> Outcome:
        """A button (or a menu choice) on the Home tab or in an open modal."""
        try:
            ack = self.driver.click_view(view_id, action_id, user=user, block_id=block_id, value=value)
        except (LookupError, ValueError) as exc:
            return Outcome(False, str(exc))
        return self._answered(ack, user, "")

    def submit(self, user: str, view_id: str, values: Mapping[str, Mapping[str, Any]]) -> Outcome:
        """Submit a modal with {block_id: {action_id: value}}; field errors keep it open, as in Slack."""
        try:
            ack = self.driver.submit_view(view_id, values, user=user)
        except (LookupError, ValueError, KeyError) as exc:
            return Outcome(False, str(exc).strip("'\""))
        failed = _failure(ack, "opsbot did not accept the form")
        if failed:
            return Outcome(False, failed)
        answer = _ack_json(ack)
        if answer.get("response_action") == "errors":
            errors = answer.get("errors") or {}
            return Outcome(False, None, {str(k): str(v) for k, v in errors.items()})
        view = self.fake.view(view_id)
        return Outcome(True, closed=view is None or view.closed)

    def close(self, user: str, view_id: str) -> Outcome:
        """The modal's Cancel (opsbot asks for no view_closed events, so Slack sends none)."""
        view = self.fake.view(view_id)
        if view is None or view.user != user:
            return Outcome(False, f"{user} has no modal {view_id}")
        self.fake.close_view(view_id)
        self.notices.touch()
        return Outcome(True, closed=True)

    def open_home(self, user: str) -> Outcome:
        """Opening the app's Home tab: Slack sends app_home_opened, the bot publishes the view."""
        return self._answered(self.driver.app_home_opened(user), user, "")

    def _answered(self, ack: Ack, user: str, channel: str) -> Outcome:
        failed = _failure(ack, "opsbot did not answer")
        if failed:
            self.notices.add(user, channel, failed, "error")
            return Outcome(False, failed)
        return Outcome(True)


def _ack_json(ack: Ack) -> JSON:
    """An ack's JSON body; a plain-text body is the text Slack shows."""
    try:
        body = ack.json()
    except ValueError:
        return {"text": ack.body}
    return body if isinstance(body, dict) else {}


def _failure(ack: Ack, what: str) -> str | None:
    """What Slack tells the person when the bot's ack is missing, late or not a 200 (None when it is fine)."""
    if ack.error is not None:
        return f'{what} with the error "dispatch_failed" ({ack.error})'
    if ack.slow:
        return f'{what} with the error "operation_timeout" (no ack within {ack.deadline:.0f} s)'
    if ack.status != 200:
        return f'{what} with the error "http_service_error" (HTTP {ack.status})'
    return None
