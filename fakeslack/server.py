"""The fake Slack HTTP server: Web API calls under /api/<method>, response_urls under /response/<id>."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fakeslack.api import ApiResult, dispatch, message_channel, refused
from fakeslack.models import JSON, Call
from fakeslack.responses import handle_response_url
from fakeslack.state import SlackState
from fakeslack.traffic import Fault

RESPONSE_URL_METHOD = "response_url"


def parse_args(query: str, body: bytes, content_type: str) -> tuple[JSON, ApiResult | None]:
    """Read Web API arguments from the query string and a form or JSON body, like Slack does."""
    args: JSON = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    if not body:
        return args, None
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return args, refused("invalid_json")
        if not isinstance(data, dict):
            return args, refused("json_not_object")
        args.update(data)
    elif kind == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            return args, refused("invalid_form_data")
        args.update({k: v[-1] for k, v in form.items()})
    elif not kind:
        return args, refused("missing_post_type")
    else:
        return args, refused("invalid_post_type", f"[ERROR] the fake does not accept {kind} bodies")
    return args, None


def faulted(fault: Fault | None) -> ApiResult | None:
    """Sleep for an injected delay, then return the injected failure (None to carry on normally)."""
    if fault is None:
        return None
    if fault.delay > 0:
        time.sleep(fault.delay)
    if fault.status is None and fault.error is None:
        return None
    return ApiResult(fault.status or 200, fault.body(), fault.headers())


def serve_api(
    state: SlackState, verb: str, method: str, query: str, body: bytes, content_type: str, bearer: str | None
) -> ApiResult:
    """Answer one Web API request: injected faults first, then the method itself; record the call."""
    args, problem = parse_args(query, body, content_type)
    with state.lock:
        fault = state.faults.take(method, message_channel(state, args))
    is_json = content_type.lower().startswith("application/json")
    result: ApiResult | None
    if fault is not None and fault.applied:
        with state.lock:
            done = problem or dispatch(state, method, args, bearer, is_json)
        result = faulted(fault) or done
    else:
        result = faulted(fault)
    if result is None:
        with state.lock:
            result = problem or dispatch(state, method, args, bearer, is_json)
    with state.lock:
        recorded = {k: ("***" if k == "token" else v) for k, v in args.items()}
        state.record(
            Call(
                method=method,
                args=recorded,
                at=state.wall(),
                status=result.status,
                body=result.body,
                http_verb=verb,
                content_type=content_type,
            )
        )
    return result


def serve_response_url(state: SlackState, url_id: str, body: bytes) -> ApiResult:
    """Answer one POST to a response_url: injected faults first, then the response; record the call."""
    with state.lock:
        known = state.response_urls.get(url_id)
        fault = state.faults.take(RESPONSE_URL_METHOD, known.channel if known else None)
    result = faulted(fault)
    with state.lock:
        if result is None:
            result = handle_response_url(state, url_id, body)
        try:
            sent = json.loads(body or b"{}")
        except ValueError:
            sent = {"raw": body.decode("utf-8", "replace")}
        state.record(
            Call(
                method=RESPONSE_URL_METHOD,
                args={"url_id": url_id, "body": sent},
                at=state.wall(),
                status=result.status,
                body=result.body,
                content_type="application/json",
            )
        )
    return result


class _Server(ThreadingHTTPServer):
    """A threading HTTP server that knows the fake's state."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 256  # Slack takes a burst of connections; the stdlib's backlog of 5 resets them
    state: SlackState


class _Handler(BaseHTTPRequestHandler):
    """Routes requests to the Web API or to a response_url."""

    server: _Server

    def do_POST(self) -> None:
        """Serve a POST (Web API or response_url)."""
        self._route("POST")

    def do_GET(self) -> None:
        """Serve a GET (Web API methods accept query-string arguments)."""
        self._route("GET")

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def _route(self, verb: str) -> None:
        """Read the request, answer it, and write the JSON reply."""
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        state = self.server.state
        if parts.path.startswith("/api/"):
            auth = self.headers.get("Authorization") or ""
            bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else None
            content_type = self.headers.get("Content-Type") or ""
            result = serve_api(state, verb, parts.path[5:], parts.query, body, content_type, bearer)
        elif parts.path.startswith("/response/") and verb == "POST":
            result = serve_response_url(state, parts.path[len("/response/") :], body)
        else:
            result = ApiResult(404, {"ok": False, "error": "not_found"})
        payload = json.dumps(result.body).encode("utf-8")
        self.send_response(result.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in result.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


class SlackHttpServer:
    """Serves a SlackState over HTTP in a background thread."""

    def __init__(self, state: SlackState, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state
        self.host = host
        self.requested_port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind the port and start serving."""
        if self._server is not None:
            raise RuntimeError("fake Slack already started")
        server = _Server((self.host, self.requested_port), _Handler)
        server.state = self.state
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-slack", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def port(self) -> int:
        """The bound port; RuntimeError when not running."""
        if self._server is None:
            raise RuntimeError("fake Slack is not running; call start() first")
        return int(self._server.server_address[1])
