"""Masking of secrets in anything that leaves the process: logs, audit events, chat, CLI output."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping, MutableMapping
from functools import lru_cache
from typing import Any

MASK = "***"

# Key names. A name is split into lower-case, singular segments (`PGPassword` -> pg, password; `x-api-keys` ->
# x, api, key). It is secret when the segments run together contain one of _SECRET_WORDS, when a segment is one
# of _SECRET_SEGMENTS, or when it ends in `auth` or `_pass` (`basic_auth`, `DB_PASS`). It is not secret when it
# ends with one of _NOT_SECRET (tokens that only deduplicate or fence; the variable that holds a DSN), when its
# last segment only describes a secret (its file, ARN, name, lifetime, type: `password_file`, `secret_arn`,
# `token_ttl`, `token_bucket_rate`), or when it is a negated flag (`--no-password`). `PWD` is masked like `pwd`:
# hiding a working directory costs less than showing a MySQL password.
_SECRET_WORDS: tuple[str, ...] = ("password", "passwd", "passphrase", "passcode", "secret", "token", "credential")
_SECRET_WORDS += ("authorization", "signature", "apikey", "privatekey", "accesskey", "signingkey", "masterkey")
_SECRET_WORDS += ("encryptionkey",)
_SECRET_SEGMENTS = frozenset({"pwd", "dsn", "sig"})
# After `secrets:` in prose comes a sentence, not a secret: "holds no secrets: a database is named by...".
_PROSE = frozenset({"a", "an", "the", "is", "are", "was", "were", "be", "not", "no", "in", "on", "of", "for", "to"})
_PROSE |= {"and", "or", "it", "its", "this", "that", "these", "those", "from", "with", "by", "we", "they", "you"}
_NOT_SECRET = ("idempotency_token", "client_token", "lease_token", "dsn_env")
_DESCRIBES_SECRET = frozenset({"env", "file", "path", "arn", "name", "id", "version", "algorithm", "type", "policy"})
_DESCRIBES_SECRET |= {"ttl", "expiry", "expire", "expiration", "at", "rotation", "length", "count", "rate", "bucket"}
_DESCRIBES_SECRET |= {"stdin", "prompt", "enabled", "required"}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z]{2})")  # apiKey, APIKey; not PWDs
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")

# A cheap superset of the words above, checked inside the text patterns so that ordinary `key=value` pairs
# are rejected by the regex engine rather than by a Python callback.
_HINT = r"(?:pass|pwd|secret|token|credential|key|auth|dsn|sig)"


def _segments(key: str) -> list[str]:
    """The lower-case words of a key name, split at punctuation and camelCase boundaries, plurals made singular."""
    words = _NOT_ALNUM.split(_CAMEL.sub("_", key).lower())
    return [w[:-1] if len(w) > 2 and w.endswith("s") and not w.endswith("ss") else w for w in words if w]


def _describes_secret(segments: list[str]) -> bool:
    """Whether a key names something about a secret (its file, ARN, lifetime) or a non-secret token."""
    if not segments:
        return False
    snake = "_".join(segments)
    return (
        segments[0] == "no"
        or segments[-1] in _DESCRIBES_SECRET
        or any(snake == name or snake.endswith("_" + name) for name in _NOT_SECRET)
    )


@lru_cache(maxsize=1024)  # log lines repeat their keys; each text pass asks about every candidate key it finds
def _is_secret_key(key: str) -> bool:
    """Whether a value stored under this key name is a secret, so masked whole."""
    segments = _segments(key)
    if not segments or _describes_secret(segments):
        return False
    joined = "".join(segments)
    return (
        any(word in joined for word in _SECRET_WORDS)
        or not _SECRET_SEGMENTS.isdisjoint(segments)
        # Only last, since `auth_method` and `pass_count` describe; and not alone, since "One pass: ..." is prose.
        or segments[-1] == "auth"
        or (segments[-1] == "pass" and len(segments) > 1)
    )


def _is_authorization(key: str) -> bool:
    """Whether the key is an HTTP authorization header, whose value has its own pattern."""
    return "".join(_segments(key)).endswith("authorization")


_FLAGS = re.ASCII | re.IGNORECASE | re.VERBOSE

# Values, matched where a key's separator ends. Quantifiers are possessive (`++`, `*+`): a value never gives
# characters back, so a long token costs one linear scan and never a backtracking search. A quoted value runs
# to its closing quote (or the end of the line, when a cut removed it).
_DQ = r'"(?:[^"\\\n]|\\.)*+"?'
_SQ = r"'(?:[^'\\\n]|\\.)*+'?"
_ESCAPED_DQ = r'\\"(?:[^\\\n]|\\[^"\n])*+(?:\\")?'  # a JSON document inside a JSON string: {\"password\": \"x\"}
# A bare value runs to whitespace; a quote ends it only when followed by whitespace, punctuation or the end,
# so `'password=x'` keeps its closing quote and `password=ab"cd` is masked whole.
_BARE = r"""(?:[^\s"']++|["'](?![\s,;)\]}]|\Z))++"""
_VALUE = re.compile(f"{_ESCAPED_DQ}|{_DQ}|{_SQ}|{_BARE}", re.ASCII)
_QUERY_VALUE = re.compile(r"""[^&#\s"'<>]++""", re.ASCII)
_SCHEME = r"(?:(?-i:Bearer|Basic|Token)[ \t]++(?=\S))?"  # `token: Bearer x` keeps its scheme in sight

# `key=value`, `key: value`, `"key": "value"`, `key = 'value'`. The key starts a token: not after a word
# character, `-` (a CLI flag), `:` (ARNs: `...:secret:prod/db`), `/` (paths) or `?&#` (query strings).
_ASSIGNMENT = re.compile(
    rf"""
    (?<![\w.:/?&\#-])
    (?P<key>(?P<kq>\\?["']?)(?=[\w.-]{{0,64}}?{_HINT})[A-Za-z_][\w.-]{{0,127}}(?P=kq))
    (?P<sep>[ \t]{{0,4}}(?:=(?!=)|:(?!:))[ \t]{{0,4}}){_SCHEME}
    """,
    _FLAGS,
)
# `--password x`, `--db-password='x y'`, `-password=x`; never `-p x`, and never a value that is itself a flag.
_FLAG = re.compile(
    rf"""
    (?<![\w-])(?P<key>
        --(?=[\w.-]{{0,64}}?{_HINT})[A-Za-z][\w.-]{{0,63}}
      | -(?=[\w.-]{{0,64}}?{_HINT})[A-Za-z][\w.-]{{1,63}}(?==)
    )
    (?P<sep>=|[ \t]{{1,4}}+(?!-)){_SCHEME}
    """,
    _FLAGS,
)
# `?token=x&`, `&password=x`, `#access_token=x` (OAuth fragments).
_QUERY = re.compile(rf"(?<=[?&\#])(?P<key>(?=[\w.-]{{0,64}}?{_HINT})[\w.-]{{1,128}})(?P<sep>=)", _FLAGS)
# `Authorization: Bearer x`, `"Proxy-Authorization": "Basic x"`, `HTTP_AUTHORIZATION=Digest ...`. A known
# one-token scheme stays visible and its token is masked; anything else is masked to the closing quote or,
# unquoted, to the end of the line (Digest and AWS4-HMAC-SHA256 spread their credential over several fields).
_AUTHORIZATION = re.compile(
    r"""
    (?P<pre>(?<![\w.-])[\w.-]{0,96}?authorization\\?["']?[ \t]{0,4}[:=][ \t]{0,4}(?P<vq>\\?["'])?)
    (?:(?P<scheme>(?:basic|bearer|token|bot|jwt)[ \t]++)[^\s"'\\]++|(?(vq)[^\r\n"'\\]++|[^\r\n]++))
    """,
    _FLAGS,
)
# user:password@ in any URL or DSN (an empty user too, as in redis://:password@host). The password runs to
# the last `@` of the token: the callback finds it, so the regex itself never backtracks.
_URL_USERINFO = re.compile(
    r"\b(?P<pre>[a-z][a-z0-9+.-]{0,30}://[^:/@\s]{0,256}:)(?P<rest>\S++)", re.ASCII | re.IGNORECASE
)
# Tokens recognisable by their shape alone, wherever they appear. A private key block cut before its END line
# is masked as far as its base64 goes.
_TOKENS = re.compile(
    r"""
    -----BEGIN[ A-Z0-9]{0,64}PRIVATE[ ]KEY(?:[ ]BLOCK)?-----
        (?:.{0,65536}?-----END[ A-Z0-9]{0,64}PRIVATE[ ]KEY(?:[ ]BLOCK)?-----|[A-Za-z0-9+/=\s\\:,-]{0,65536}+)
    | (?<![A-Za-z0-9])(?:
        gh[pousr]_[A-Za-z0-9]{20,}+                   # GitHub
      | github_pat_\w{20,}+
      | glpat-[\w-]{20,}+                             # GitLab
      | x(?:ox[abposre]|app)-[A-Za-z0-9-]{8,}+        # Slack
      | (?:AKIA|ASIA)[A-Z0-9]{16}(?![\w-])            # AWS access key ids
      | sk-[\w-]{20,}+                                # OpenAI, Anthropic
      | [sr]k_(?:live|test)_[A-Za-z0-9]{10,}+         # Stripe
      | AIza[\w-]{35}(?![\w-])                        # Google API keys
      | eyJ[\w-]{5,}+\.eyJ[\w-]{5,}+\.[\w-]*+         # JWTs
    )
    """,
    re.ASCII | re.VERBOSE | re.DOTALL,
)
_BEARER = re.compile(r"(?P<pre>\bBearer[ \t]++)[\w.~+/=-]{8,}+", re.ASCII | re.IGNORECASE)
# `Basic <base64>` outside a header is masked only when it decodes to `user:password`, so the words after
# "basic" in prose ("basic authentication") stay.
_BASIC = re.compile(r"(?P<pre>\bBasic[ \t]++)(?P<token>[A-Za-z0-9+/]{8,}+={0,2})(?![\w+/=-])", re.ASCII | re.IGNORECASE)
# SQL: `ALTER ROLE app WITH PASSWORD 'x'`, `IDENTIFIED BY 'x'` (quotes doubled inside, as SQL escapes them).
_SQL_PASSWORD = re.compile(
    r"""(?P<pre>\b(?:password|identified[ \t]+by)[ \t]++)(?P<value>'(?:[^'\n]|'')*+'?|"(?:[^"\n]|"")*+"?)""",
    re.ASCII | re.IGNORECASE,
)


def _quotes(value: str) -> tuple[str, str, str]:
    """A matched value split into its opening quote, its content and its closing quote (either may be empty)."""
    for quote in ('\\"', '"', "'"):
        if value.startswith(quote):
            closed = len(value) >= 2 * len(quote) and value.endswith(quote)
            return quote, value[len(quote) : len(value) - len(quote) * closed], quote * closed
    return "", value, ""


def _masked_value(value: str) -> str:
    """MASK in place of a value, keeping the quotes around it so the text still reads (and re-reads) the same."""
    opening, _, closing = _quotes(value)
    return opening + MASK + closing


def _pair_masker(pattern: re.Pattern[str], value: re.Pattern[str]) -> Callable[[str], str]:
    """A pass that masks the value after each key found by `pattern` that names a secret."""

    def mask(text: str) -> str:
        parts: list[str] = []
        pos = 0
        while (m := pattern.search(text, pos)) is not None:
            key = m["key"].strip("\\\"'-")
            # An authorization header's value is masked already (by _AUTHORIZATION, scheme and all).
            secret = _is_secret_key(key) and not (pattern is _ASSIGNMENT and _is_authorization(key))
            found = value.match(text, m.end()) if secret else None
            if found is None or (":" in m["sep"] and found[0].lower() in _PROSE):
                # Scan on from the value, which may hold a secret pair of its own (`dsn_env="password=x"`).
                parts.append(text[pos : m.end()])
                pos = m.end()
            else:
                parts.append(text[pos : m.end()] + _masked_value(found[0]))
                pos = found.end()
        parts.append(text[pos:])
        return "".join(parts)

    return mask


def _mask_authorization(m: re.Match[str]) -> str:
    """The header with its credential masked and a known one-token scheme left visible."""
    return m["pre"] + (m["scheme"] or "") + MASK


def _mask_userinfo(m: re.Match[str]) -> str:
    """The URL with everything between `user:` and the last `@` of the token masked."""
    at = m["rest"].rfind("@")
    if at < 0:
        return m[0]
    return m["pre"] + MASK + m["rest"][at:]


def _mask_basic(m: re.Match[str]) -> str:
    """`Basic` credentials masked when the token decodes to `user:password`."""
    token = m["token"]
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
    except (binascii.Error, ValueError):
        return m[0]
    return m["pre"] + MASK if b":" in decoded else m[0]


def _mask_sql(m: re.Match[str]) -> str:
    """A SQL password literal masked, its quotes kept."""
    return m["pre"] + _masked_value(m["value"])


def _replacing(pattern: re.Pattern[str], repl: str | Callable[[re.Match[str]], str]) -> Callable[[str], str]:
    """A pass that replaces every match of `pattern`."""
    return lambda text: pattern.sub(repl, text)


# Applied in order, each to the whole text. An entry's lower-case needles (the text holds one of them whenever
# the pass can change it) skip a pass cheaply on the many log lines it cannot apply to. Passes whose match may
# end just before a key (`Bearer abc"password"=x`) go first, so the key is seen after the mask, as a second
# redaction would see it; authorization headers and query strings go before the assignments that skip them.
_PASSES: tuple[tuple[tuple[str, ...], Callable[[str], str]], ...] = (
    ((), _replacing(_TOKENS, MASK)),
    (("bearer",), _replacing(_BEARER, r"\g<pre>" + MASK)),
    (("basic",), _replacing(_BASIC, _mask_basic)),
    (("password", "identified"), _replacing(_SQL_PASSWORD, _mask_sql)),
    (("authorization",), _replacing(_AUTHORIZATION, _mask_authorization)),
    (("://",), _replacing(_URL_USERINFO, _mask_userinfo)),
    (("=",), _pair_masker(_QUERY, _QUERY_VALUE)),
    (("-",), _pair_masker(_FLAG, _VALUE)),
    (("=", ":"), _pair_masker(_ASSIGNMENT, _VALUE)),
)


def redact_text(text: str) -> str:
    """Free text with every secret it recognises replaced by MASK, the names around them kept."""
    lowered = text.lower()
    for needles, apply in _PASSES:
        if not needles or any(needle in lowered for needle in needles):
            text = apply(text)
    return text


def redact(value: Any, _key: str | None = None) -> Any:
    """Return a copy of `value` with secret-looking keys masked and secret patterns scrubbed from strings."""
    return _redact(value, _key is not None and _is_secret_key(_key))


def _redact(value: Any, secret: bool) -> Any:
    """`value` redacted; `secret` when it is held under a secret name, directly or further up."""
    if secret and not isinstance(value, Mapping | list | tuple | bool) and value not in (None, ""):
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        # Below a secret name every value is secret (`password: {value: x}`, `tokens: [x, y]`) except those
        # whose own key only describes it (`secret: {name: prod/db, arn: ...}` keeps its name and ARN).
        return {
            k: _redact(v, _is_secret_key(str(k)) or (secret and not _describes_secret(_segments(str(k)))))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_redact(v, secret) for v in value)
    if isinstance(value, BaseException):
        return redact_text(str(value))
    return value


def redaction_processor(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: every event passes through `redact` before rendering."""
    return {k: redact(v, k if k != "event" else None) for k, v in event_dict.items()}
