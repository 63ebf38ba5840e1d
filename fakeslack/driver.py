"""Drive a bot like Slack does: signed slash commands, interactions and events, timing every ack."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fakeslack import payloads
from fakeslack.payloads import Actor

if TYPE_CHECKING:
    from fakeslack.fake import FakeSlack

ACK_DEADLINE = 3.0
_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"
_KEEP_OPEN = frozenset({"errors", "update", "push"})


def sign(secret: str, timestamp: int | str, body: str) -> str:
    """Slack's request signature: v0= + hex HMAC-SHA256(secret, 'v0:{timestamp}:{body}')."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class Ack:
    """The bot's answer to one request, and how long it took."""

    kind: str
    status: int
    body: str
    headers: dict[str, str]
    elapsed: float
    deadline: float
    request_body: str
    sent_at: float
    error: str | None = None
    trigger_id: str | None = None
    response_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def slow(self) -> bool:
        """True when Slack would have given up: no answer, or an answer after the deadline."""
        return self.error is not None or self.elapsed > self.deadline

    @property
    def ok(self) -> bool:
        """True for a timely HTTP 200."""
        return self.status == 200 and not self.slow

    def json(self) -> Any:
        """The ack body parsed as JSON (None for an empty body)."""
        return json.loads(self.body) if self.body.strip() else None

    def __str__(self) -> str:
        """A one-line account of the ack for failure messages."""
        what = self.error or f"HTTP {self.status}"
        return f"{self.kind}: {what} in {self.elapsed:.3f}s (deadline {self.deadline:.1f}s)"


class SlackDriver:
    """Sends Slack-shaped, signed requests to a bot and records each ack's status, body and latency."""

    def __init__(
        self,
        fake: FakeSlack,
        bot_url: str,
        *,
        signing_secret: str | None = None,
        timeout: float = 10.0,
        ack_deadline: float = ACK_DEADLINE,
    ) -> None:
        self.fake = fake
        self.bot_url = bot_url
        self.signing_secret = signing_secret if signing_secret is not None else fake.signing_secret
        self.timeout = timeout
        self.ack_deadline = ack_deadline
        self._acks: list[Ack] = []
        self._lock = threading.Lock()
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # --- acks -------------------------------------------------------------------------------------

    @property
    def acks(self) -> list[Ack]:
        """Every ack received, in order."""
        with self._lock:
            return list(self._acks)

    @property
    def slow_acks(self) -> list[Ack]:
        """Acks that took longer than the deadline (or never came)."""
        return [a for a in self.acks if a.slow]

    def assert_acks_fast(self) -> None:
        """Raise AssertionError listing every ack slower than the deadline."""
        slow = self.slow_acks
        if slow:
            raise AssertionError(
                "bot acked too slowly (Slack gives up after "
                f"{self.ack_deadline:.0f}s):\n" + "\n".join(f"  {a}" for a in slow)
            )

    # --- low level --------------------------------------------------------------------------------

    def send(
        self,
        kind: str,
        body: str,
        content_type: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Ack:
        """POST a raw body to the bot, signed (or with a forged `signature`), and time the ack."""
        ts = int(time.time()) if timestamp is None else timestamp
        sent_headers = {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": signature if signature is not None else sign(self.signing_secret, ts, body),
        }
        sent_headers.update(headers or {})
        request = urllib.request.Request(self.bot_url, data=body.encode("utf-8"), headers=sent_headers, method="POST")
        started, sent_at = time.perf_counter(), time.time()
        status, text, reply_headers, error = 0, "", {}, None
        try:
            with self._opener.open(request, timeout=self.timeout) as reply:
                status, text, reply_headers = (
                    reply.status,
                    reply.read().decode("utf-8", "replace"),
                    dict(reply.headers),
                )
        except urllib.error.HTTPError as exc:
            status, text, reply_headers = exc.code, exc.read().decode("utf-8", "replace"), dict(exc.headers)
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            error = f"no ack: {getattr(exc, 'reason', exc)}"
        ack = Ack(
            kind=kind,
            status=status,
            body=text,
            headers=reply_headers,
            elapsed=time.perf_counter() - started,
            deadline=self.ack_deadline,
            request_body=body,
            sent_at=sent_at,
            error=error,
        )
        with self._lock:
            self._acks.append(ack)
        return ack

    def _actor(self, user: str, channel: str | None) -> Actor:
        """Resolve a user and channel through the fake (KeyError for unknown ones)."""
        uid, name = self.fake.user(user)
        if channel is None:
            return Actor(uid, name)
        cid = self.fake.channel_id(channel)
        return Actor(uid, name, cid, self.fake.channel_name(cid))

    def _send_payload(self, kind: str, payload: Mapping[str, Any], **sign_opts: Any) -> Ack:
        """Send an interaction as a form with a single `payload` field."""
        return self.send(kind, urlencode({"payload": json.dumps(payload)}), _FORM, **sign_opts)

    # --- slash commands ---------------------------------------------------------------------------

    def slash_command(
        self,
        command: str,
        text: str = "",
        *,
        user: str,
        channel: str,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> Ack:
        """Send `/command text` typed by `user` in `channel`."""
        if not command.startswith("/"):
            raise ValueError("a slash command starts with '/'")
        actor = self._actor(user, channel)
        assert actor.channel_id is not None
        trigger_id = self.fake.issue_trigger(actor.user_id)
        response_url = self.fake.issue_response_url(actor.channel_id, actor.user_id)
        form = payloads.slash_command_form(
            self.fake.workspace, actor, command, text, response_url=response_url, trigger_id=trigger_id
        )
        ack = self.send(f"slash_command {command}", urlencode(form), _FORM, timestamp=timestamp, signature=signature)
        ack.trigger_id, ack.response_url = trigger_id, response_url
        return ack

    # --- block actions ----------------------------------------------------------------------------

    def click(
        self,
        channel: str,
        ts: str,
        action_id: str,
        *,
        user: str,
        value: Any = None,
        block_id: str | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
        seen: list[dict[str, Any]] | None = None,
    ) -> Ack:
        """Click a button (or pick an option) on message `ts` in `channel`, as `user` sees it now; `seen`: the
        message's blocks as the user's client still shows them (an edit that has not reached it yet)."""
        actor = self._actor(user, channel)
        assert actor.channel_id is not None
        message = self.fake.message(actor.channel_id, ts)
        ephemeral = None
        if message is None:
            ephemeral = next((e for e in self.fake.ephemerals(actor.channel_id, actor.user_id) if e.ts == ts), None)
            if ephemeral is None:
                raise LookupError(f"no message {ts} in {channel} that {user} can see")
        blocks = (
            seen
            if seen is not None
            else message.blocks
            if message is not None
            else ephemeral.blocks
            if ephemeral
            else []
        )
        bid, element = payloads.find_element(blocks, action_id, block_id)
        chosen = value if value is not None else element.get("value")
        trigger_id = self.fake.issue_trigger(actor.user_id)
        response_url = self.fake.issue_response_url(
            actor.channel_id,
            actor.user_id,
            message_ts=ts if message else None,
            ephemeral_ts=ts if ephemeral else None,
        )
        thread_ts = message.thread_ts if message and message.is_reply else (ephemeral.thread_ts if ephemeral else None)
        payload = payloads.block_actions_on_message(
            self.fake.workspace,
            actor,
            trigger_id=trigger_id,
            response_url=response_url,
            message=message.to_api() if message else None,
            message_ts=ts,
            thread_ts=thread_ts,
            action=payloads.action_entry(bid, element, chosen),
        )
        ack = self._send_payload(f"block_actions {action_id}", payload, timestamp=timestamp, signature=signature)
        ack.trigger_id, ack.response_url = trigger_id, response_url
        return ack

    def click_view(
        self,
        view_id: str,
        action_id: str,
        *,
        user: str | None = None,
        value: Any = None,
        block_id: str | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> Ack:
        """Click a button (or pick an option) in an open modal or on a home tab."""
        view = self.fake.view(view_id)
        if view is None or view.closed:
            raise LookupError(f"view {view_id} is not open")
        actor = self._actor(user or view.user, None)
        bid, element = payloads.find_element(view.blocks, action_id, block_id)
        chosen = value if value is not None else element.get("value")
        trigger_id = self.fake.issue_trigger(actor.user_id)
        ws = self.fake.workspace
        payload = payloads.block_actions_on_view(
            ws,
            actor,
            trigger_id=trigger_id,
            view=view.to_api(ws.team_id, ws.app_id, ws.bot_id),
            action=payloads.action_entry(bid, element, chosen),
        )
        ack = self._send_payload(f"block_actions {action_id}", payload, timestamp=timestamp, signature=signature)
        ack.trigger_id = trigger_id
        return ack

    def click_home(self, user: str, action_id: str, **options: Any) -> Ack:
        """Click something on `user`'s published home tab."""
        home = self.fake.home_view(user)
        if home is None:
            raise LookupError(f"no home tab published for {user}")
        return self.click_view(home.id, action_id, user=user, **options)

    # --- modals -----------------------------------------------------------------------------------

    def submit_view(
        self,
        view_id: str,
        values: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        user: str | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> Ack:
        """Submit an open modal with {block_id: {action_id: value}}; closes unless the bot keeps it open."""
        view = self.fake.view(view_id)
        if view is None or view.type != "modal" or view.closed:
            raise LookupError(f"no open modal {view_id}")
        actor = self._actor(user or view.user, None)
        ws = self.fake.workspace
        rendered = view.to_api(ws.team_id, ws.app_id, ws.bot_id)
        rendered["state"] = {"values": payloads.state_values(view.blocks, values or {})}
        trigger_id = self.fake.issue_trigger(actor.user_id)
        payload = payloads.view_submission(ws, actor, trigger_id=trigger_id, view=rendered)
        ack = self._send_payload(
            f"view_submission {view.callback_id}", payload, timestamp=timestamp, signature=signature
        )
        ack.trigger_id = trigger_id
        try:
            action = (ack.json() or {}).get("response_action")
        except (ValueError, AttributeError):
            action = None
        ack.extra["response_action"] = action
        if ack.ok and action not in _KEEP_OPEN:
            self.fake.close_view(view_id)
        return ack

    # --- events -----------------------------------------------------------------------------------

    def app_home_opened(
        self, user: str, *, tab: str = "home", timestamp: int | None = None, signature: str | None = None
    ) -> Ack:
        """Send an app_home_opened event for `user` opening the app's home (or messages) tab."""
        uid, _ = self.fake.user(user)
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": uid,
            "channel": self.fake.channel_id(uid),
            "tab": tab,
            "event_ts": payloads.action_ts(),
        }
        home = self.fake.home_view(uid)
        if home is not None:
            ws = self.fake.workspace
            event["view"] = home.to_api(ws.team_id, ws.app_id, ws.bot_id)
        return self.event(event, timestamp=timestamp, signature=signature)

    def event(self, event: Mapping[str, Any], *, timestamp: int | None = None, signature: str | None = None) -> Ack:
        """Send any Events API event inside an event_callback envelope."""
        envelope = payloads.event_callback(self.fake.workspace, dict(event))
        return self.send(
            f"event {event.get('type')}",
            json.dumps(envelope),
            _JSON,
            timestamp=timestamp,
            signature=signature,
        )

    def url_verification(self, challenge: str = "fake-challenge") -> Ack:
        """Send the Events API url_verification handshake; the bot must echo the challenge."""
        body = {
            "token": self.fake.workspace.verification_token,
            "challenge": challenge,
            "type": "url_verification",
        }
        return self.send("url_verification", json.dumps(body), _JSON)
