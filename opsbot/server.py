"""HTTP mode: Bolt behind its WSGI adapter at /slack/events, plus /healthz, served by waitress."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import sqlalchemy as sa
import structlog
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk.signature import SignatureVerifier
from waitress.server import create_server

from store.sql import SqlStore

log = structlog.get_logger("opsbot.server")

StartResponse = Callable[..., Any]


MAX_BODY = 1_000_000  # Slack's payloads are far smaller; anything bigger is not Slack


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


def guarded(slack: Callable[..., Iterable[bytes]], signing_secret: str) -> Callable[..., Iterable[bytes]]:
    """Check the signature and that the body parses before Bolt sees it: a forged or broken request gets a
    401 or a 400 and one warning line, never an HTTP 500 with a traceback (Bolt parses before it verifies)."""
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
        environ["wsgi.input"] = io.BytesIO(body)
        return slack(environ, start_response)

    return application


def wsgi_app(
    app: App, store: SqlStore, signing_secret: str
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    slack = guarded(SlackRequestHandler(app, path="/slack/events"), signing_secret)

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
        if path == "/slack/events" and environ.get("REQUEST_METHOD") == "POST":
            return slack(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found"]

    return application


def make_server(app: App, store: SqlStore, signing_secret: str, host: str, port: int, threads: int = 16) -> Any:
    """A waitress server bound to host:port (0 picks a free port: see `.effective_port`)."""
    application = wsgi_app(app, store, signing_secret)
    return create_server(application, host=host, port=port, threads=threads, ident="opsbot")
