"""The sandbox's web server: the page, its static files, and a small JSON API over the local stack."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from waitress.server import create_server

from devstack.demo import OPS, Stack
from devstack.sandbox.actions import Actions, Outcome
from devstack.sandbox.notices import Notices
from devstack.sandbox.snapshot import Query, snapshot, version
from devstack.sandbox.world import CHANNELS, NOTES, Person, instances, people, sandbox_stack

JSON = dict[str, Any]
StartResponse = Callable[..., Any]
STATIC = Path(__file__).parent / "static"
FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/sandbox.js": ("sandbox.js", "text/javascript; charset=utf-8"),
    "/static/sandbox.css": ("sandbox.css", "text/css; charset=utf-8"),
}
MAX_BODY = 1_000_000


class BadRequest(Exception):
    """A request the page would never send."""


@dataclass
class Sandbox:
    """A running sandbox: its page's URL and the stack behind it."""

    url: str
    stack: Stack
    people: list[Person]


class SandboxApp:
    """WSGI: GET the page and /api/state, /api/aws; POST /api/message, click, submit, close, home."""

    def __init__(self, stack: Stack, members: list[Person], channels: dict[str, str]) -> None:
        self.stack, self.people, self.channels = stack, members, channels
        self.notices = Notices()
        self.actions = Actions(stack.fake, stack.driver, self.notices)
        self._users = {p.id for p in members}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO") or "/"
        try:
            if path in FILES and method in ("GET", "HEAD"):
                name, kind = FILES[path]
                return _reply(start_response, "200 OK", (STATIC / name).read_bytes(), kind)
            if path == "/api/state" and method == "GET":
                return _json(start_response, self.state(parse_qs(environ.get("QUERY_STRING", ""))))
            if path == "/api/aws" and method == "GET":
                return _json(start_response, {"instances": instances(self.stack.aws), "notes": NOTES})
            if path.startswith("/api/") and method == "POST":
                outcome = self.act(path.removeprefix("/api/"), _body(environ))
                return _json(start_response, outcome.to_json())
        except BadRequest as exc:
            return _json(start_response, {"ok": False, "error": str(exc)}, "400 Bad Request")
        return _json(start_response, {"ok": False, "error": f"no {method} {path}"}, "404 Not Found")

    def state(self, params: dict[str, list[str]]) -> JSON:
        """The page's state for one person, or just the version when it has not moved since `since`."""
        first = {k: v[0] for k, v in params.items() if v}
        current = version(self.stack.fake, self.notices)
        if first.get("since") == current:
            return {"version": current, "unchanged": True}
        channel = first.get("channel") or OPS
        query = Query(self._user(first.get("user")), channel if channel in self.channels else OPS, first.get("thread"))
        return snapshot(self.stack.fake, self.notices, self.people, self.channels, query)

    def act(self, action: str, body: JSON) -> Outcome:
        user = self._user(body.get("user"))
        a = self.actions
        if action == "message":
            return a.message(user, self._channel(body, user), _text(body, "text"))
        if action == "click" and body.get("view_id"):
            view_id = _text(body, "view_id")
            return a.click_view(user, view_id, _text(body, "action_id"), _opt(body, "block_id"), _opt(body, "value"))
        if action == "click":
            channel, ts = self._channel(body, user, dm=True), _text(body, "ts")
            return a.click(user, channel, ts, _text(body, "action_id"), _opt(body, "block_id"), _opt(body, "value"))
        if action == "submit":
            values = body.get("values")
            if not isinstance(values, dict) or not all(isinstance(v, dict) for v in values.values()):
                raise BadRequest("values must be {block_id: {action_id: value}}")
            return a.submit(user, _text(body, "view_id"), values)
        if action == "close":
            return a.close(user, _text(body, "view_id"))
        if action == "home":
            return a.open_home(user)
        raise BadRequest(f"no action {action!r}")

    def _user(self, value: object) -> str:
        if value is None or value == "":
            return self.people[0].id
        if value not in self._users:
            raise BadRequest(f"no user {value!r} in the sandbox")
        return str(value)

    def _channel(self, body: JSON, user: str, *, dm: bool = False) -> str:
        """A channel of the sandbox, or (for a click) the person's DM with the bot."""
        channel = body.get("channel")
        if channel in self.channels or (dm and channel == self.stack.fake.channel_id(user)):
            return str(channel)
        raise BadRequest(f"no channel {channel!r} in the sandbox")


def _text(body: JSON, key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{key} is required")
    return value


def _opt(body: JSON, key: str) -> str | None:
    value = body.get(key)
    return value if isinstance(value, str) and value else None


def _body(environ: dict[str, Any]) -> JSON:
    """A JSON object body; only the page's fetch() sends one (a cross-site form post cannot)."""
    if not str(environ.get("CONTENT_TYPE", "")).startswith("application/json"):
        raise BadRequest("send application/json")
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length > MAX_BODY:
        raise BadRequest("body too large")
    try:
        body = json.loads(environ["wsgi.input"].read(length) or b"{}")
    except ValueError:
        raise BadRequest("body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


def _reply(start_response: StartResponse, status: str, data: bytes, kind: str) -> list[bytes]:
    start_response(status, [("Content-Type", kind), ("Content-Length", str(len(data))), ("Cache-Control", "no-store")])
    return [data]


def _json(start_response: StartResponse, document: JSON, status: str = "200 OK") -> list[bytes]:
    return _reply(start_response, status, json.dumps(document).encode(), "application/json")


@contextmanager
def running_sandbox(host: str = "127.0.0.1", port: int = 0) -> Iterator[Sandbox]:
    """The local stack and the page on http://host:port (0: a free port), until the block ends."""
    with sandbox_stack() as stack:
        members = people()
        app = SandboxApp(stack, members, dict(CHANNELS))
        server = create_server(app, host=host, port=port, threads=8, ident="opsbot-sandbox")
        closing = threading.Event()

        def run() -> None:
            try:
                server.run()
            except OSError:
                if not closing.is_set():  # closing the socket under the loop is how waitress stops
                    raise

        thread = threading.Thread(target=run, name="sandbox-web", daemon=True)
        thread.start()
        try:
            yield Sandbox(f"http://{host}:{server.effective_port}", stack, members)  # type: ignore[union-attr]
        finally:
            closing.set()
            server.close()
            thread.join(5)
