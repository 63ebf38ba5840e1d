"""Masking of secrets in anything that leaves the process: logs, audit events, chat, CLI output."""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

MASK = "***"

_SECRET_KEY = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?key|credential|private[_-]?key|dsn|authorization|signing)",
    re.IGNORECASE,
)
_NOT_SECRET = ("idempotency_token", "client_token", "lease_token", "dsn_env")


def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return bool(_SECRET_KEY.search(lowered)) and not lowered.endswith(_NOT_SECRET)


_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # user:password@ in any URL or DSN
    (
        re.compile(r"(?P<pre>\b[a-z][a-z0-9+.-]{0,30}://[^:/@\s]{1,256}:)\S{1,1024}(?=@)", re.IGNORECASE),
        r"\g<pre>" + MASK,
    ),
    # key=value DSN password (libpq keyword form)
    (re.compile(r"(?P<pre>\bpassword\s*=\s*)('[^']*'|\S+)", re.IGNORECASE), r"\g<pre>" + MASK),
    # Slack tokens
    (re.compile(r"\bx(?:ox[abposre]|app)-[A-Za-z0-9-]{8,}"), MASK),
    # AWS access key ids and secret keys given by name
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), MASK),
    (
        re.compile(r"(?P<pre>(?:aws_)?secret(?:_access)?_key\s*[=:]\s*['\"]?)[^\s'\",]+", re.IGNORECASE),
        r"\g<pre>" + MASK,
    ),
    # Bearer credentials in headers
    (re.compile(r"(?P<pre>\bBearer\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE), r"\g<pre>" + MASK),
)


def redact_text(text: str) -> str:
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def redact(value: Any, _key: str | None = None) -> Any:
    """Return a copy of `value` with secret-looking keys masked and secret patterns scrubbed from strings."""
    secret_scalar = not isinstance(value, Mapping | list | tuple) and value not in (None, "")
    if _key is not None and secret_scalar and _is_secret_key(_key):
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact(v) for v in value)
    if isinstance(value, BaseException):
        return redact_text(str(value))
    return value


def redaction_processor(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: every event passes through `redact` before rendering."""
    return {k: redact(v, k if k != "event" else None) for k, v in event_dict.items()}
