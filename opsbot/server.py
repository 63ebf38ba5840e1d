"""HTTP mode: Bolt behind its WSGI adapter at /slack/events, plus /healthz and /metrics, served by waitress."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import parse_qs

import sqlalchemy as sa
import structlog
from prometheus_client import make_wsgi_app
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk.signature import SignatureVerifier
from waitress.server import create_server

from store.slack import SlackStore
from store.sql import SqlStore

log = structlog.get_logger("opsbot.server")

StartResponse = Callable[..., Any]


MAX_BODY = 1_000_000  # Slack's payloads are far smaller; anything bigger is not Slack
REMEMBER = timedelta(minutes=10)  # twice Slack's five-minute signature window: older replays fail their signature


def _refuse(start_response: StartResponse, status: str, reason: str) -> Iterable[bytes]:
    log.warning("slack_request_refused", status=status.split()[0], reason=reason)
    start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [reason.encode()]


def _unreadable(body: bytes, content_type: str) -> str | None:
    """Why a signed body still cannot be handed to Bolt (it would raise inside), or None."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "the body is not UTF-8"
    if "application/json" in content_type:
        try:
            parsed = json.loads(text or "{}")
        except ValueError:
            return "the body is not JSON"
        return None if isinstance(parsed, dict) else "the body is not a JSON object"
    form = parse_qs(text, keep_blank_values=True)
    payload = form.get("payload")
    if payload is None:
        return None
    try:
        decoded = json.loads(payload[0])
    except ValueError:
        return "payload is not JSON"
    if not isinstance(decoded, dict):
        return "payload is not a JSON object"
    view = decoded.get("view")
    if view is not None and (not isinstance(view, dict) or "type" not in view):
        return "payload.view has no type"
    return None


def delivery_key(body: bytes, content_type: str) -> str:
    """What makes a signed request the same request when it arrives again: the event id of an Events API
    callback (Slack's retries resend it), else the interaction's one-time trigger id, else the body itself."""
    text = body.decode("utf-8")
    identity = ""
    if "application/json" in content_type:
        identity = "event:" + str(json.loads(text or "{}").get("event_id") or "")
    else:
        form = parse_qs(text, keep_blank_values=True)
        trigger = form.get("trigger_id", [""])[0]
        if not trigger and "payload" in form:
            trigger = str(json.loads(form["payload"][0]).get("trigger_id") or "")
        identity = "trigger:" + trigger if trigger else ""
    if identity in ("", "event:"):
        identity = "body:" + text
    return hashlib.sha256(identity.encode()).hexdigest()


class Replays:
    """Remembers the signed requests taken in (in the intent store, so across replicas) for long enough that a
    replay or a Slack retry of one is answered and ignored; forgets them once their signature has expired."""

    def __init__(self, store: SlackStore) -> None:
        self.store = store
        self._next_prune = 0.0  # monotonic; the first request prunes
        self._lock = threading.Lock()

    def first(self, key: str) -> bool:
        now = datetime.now(UTC)
        with self._lock:
            prune = time.monotonic() >= self._next_prune
            if prune:
                self._next_prune = time.monotonic() + 60
        try:
            if prune:
                self.store.forget_deliveries(now - REMEMBER)
            return self.store.first_delivery(key, now)
        except sa.exc.SQLAlchemyError as exc:  # the request itself will meet the same outage and say so
            log.warning("replay_check_unavailable", error=str(exc).splitlines()[0])
            return True


def guarded(
    slack: Callable[..., Iterable[bytes]], signing_secret: str, first: Callable[[str], bool] | None = None
) -> Callable[..., Iterable[bytes]]:
    """Check the signature and that the body parses before Bolt sees it: a forged or broken request gets a
    401 or a 400 and one warning line, never an HTTP 500 with a traceback (Bolt parses before it verifies).
    With `first`, a signed request already taken in (a replay, or Slack retrying) gets an empty 200 and
    changes nothing."""
    verifier = SignatureVerifier(signing_secret)

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _refuse(start_response, "400 Bad Request", "bad Content-Length")
        if length > MAX_BODY:
            return _refuse(start_response, "413 Payload Too Large", "the body is too large")
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {
            "x-slack-request-timestamp": environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", ""),
            "x-slack-signature": environ.get("HTTP_X_SLACK_SIGNATURE", ""),
        }
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return _refuse(start_response, "400 Bad Request", "the body is not UTF-8")
        stamp = headers["x-slack-request-timestamp"]
        if not stamp.isdigit() or not verifier.is_valid_request(body, headers):
            return _refuse(start_response, "401 Unauthorized", "invalid signature")
        why = _unreadable(body, environ.get("CONTENT_TYPE", ""))
        if why is not None:
            return _refuse(start_response, "400 Bad Request", why)
        if first is not None and not first(delivery_key(body, environ.get("CONTENT_TYPE", ""))):
            log.info("slack_request_replayed", retry=environ.get("HTTP_X_SLACK_RETRY_NUM", ""))
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("X-Slack-No-Retry", "1")])
            return [b""]
        environ["wsgi.input"] = io.BytesIO(body)
        return slack(environ, start_response)

    return application


def wsgi_app(
    app: App, store: SqlStore, signing_secret: str
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    replays = Replays(SlackStore(store.engine, store.signals))
    metrics = make_wsgi_app()  # prometheus-client's exposition of the default registry
    slack = guarded(SlackRequestHandler(app, path="/slack/events"), signing_secret, replays.first)

    def healthz(start_response: StartResponse) -> Iterable[bytes]:
        """Up, and the intent store answers."""
        try:
            with store.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            status, body = "200 OK", {"status": "ok"}
        except Exception as exc:
            log.warning("healthz_failed", error=str(exc))
            status, body = "503 Service Unavailable", {"status": "unavailable", "reason": "intent store unreachable"}
        start_response(status, [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO")
        if path == "/healthz" and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            return healthz(start_response)
        if path == "/metrics" and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            return cast(Iterable[bytes], metrics(environ, start_response))
        if path == "/slack/events" and environ.get("REQUEST_METHOD") == "POST":
            return slack(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found"]

    return application


def make_server(app: App, store: SqlStore, signing_secret: str, host: str, port: int, threads: int = 16) -> Any:
    """A waitress server bound to host:port (0 picks a free port: see `.effective_port`)."""
    application = wsgi_app(app, store, signing_secret)
    return create_server(application, host=host, port=port, threads=threads, ident="opsbot")
