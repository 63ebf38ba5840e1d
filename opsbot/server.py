"""HTTP mode: Bolt behind its WSGI adapter at /slack/events, plus /healthz, served by waitress."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
import structlog
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from waitress.server import create_server

from store.sql import SqlStore

log = structlog.get_logger("opsbot.server")

StartResponse = Callable[..., Any]


def wsgi_app(app: App, store: SqlStore) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    slack = SlackRequestHandler(app, path="/slack/events")

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
        if environ.get("PATH_INFO") == "/healthz" and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            return healthz(start_response)
        return slack(environ, start_response)

    return application


def make_server(app: App, store: SqlStore, host: str, port: int, threads: int = 16) -> Any:
    """A waitress server bound to host:port (0 picks a free port: see `.effective_port`)."""
    return create_server(wsgi_app(app, store), host=host, port=port, threads=threads, ident="opsbot")
