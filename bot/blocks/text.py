"""Safe mrkdwn text: redaction, escaping, mentions, dates, durations and truncation that never breaks markup."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from workflows.redaction import redact, redact_text
from workflows.windows import in_words

ELLIPSIS = "…"
FENCE = "```"
# Raw text is cut to what can be shown plus this margin before it is redacted: redaction costs grow
# with the square of a long token's length, and nothing past the margin would be shown anyway.
SCAN_MARGIN = 200
MAX_ITEMS = 200  # items of a list or mapping looked at; more could never fit in a block
_MORE_ROOM = 32  # room kept at the end of a bullet list for its "…and N more" line
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")
_SLACK_CHANNEL = re.compile(r"[CGD][A-Z0-9]{2,}")
_UNSAFE_IN_URL = re.compile(r"[\s<>|]")
_LAST_TOKEN = re.compile(r"\S*\Z")


def truncate(text: str, limit: int) -> str:
    """Plain text cut to at most `limit` characters, ending in an ellipsis when it was cut."""
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    return text[: limit - 1] + ELLIPSIS


def _safe_cut(text: str, limit: int) -> str:
    """The first `limit` characters of mrkdwn, shortened so no `<…>` link or `&…;` escape is split."""
    cut = text[: max(limit, 0)]
    opened = cut.rfind("<")
    if opened > cut.rfind(">"):
        cut = cut[:opened]
    amp = cut.rfind("&")
    if amp > cut.rfind(">") and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut


def truncate_mrkdwn(text: str, limit: int) -> str:
    """Mrkdwn cut to at most `limit` characters without splitting links or escapes, closing an open code fence."""
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    cut = _safe_cut(text, limit - 1)
    if cut.count(FENCE) % 2 == 0:
        return cut + ELLIPSIS
    closing = ELLIPSIS + "\n" + FENCE
    cut = _safe_cut(cut, limit - len(closing))
    return cut + (closing if cut.count(FENCE) % 2 else ELLIPSIS)


def bounded(text: str, limit: int) -> str:
    """Raw text cut before redaction: only at whitespace, so a secret is never left half-recognisable."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    if not text[limit].isspace():
        cut = _LAST_TOKEN.sub("", cut)
    return cut.rstrip() + " " + ELLIPSIS


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clean(value: object, limit: int = 3000) -> str:
    """Free text made safe for mrkdwn: cut near `limit`, secrets redacted, then control characters escaped."""
    return escape(redact_text(bounded(str(value), limit + SCAN_MARGIN)))


def clipped(value: object, limit: int) -> str:
    """Free text cleaned and cut to at most `limit` characters."""
    return truncate_mrkdwn(clean(value, limit), limit)


def shrink(value: Any, leaf: int) -> Any:
    """Structured data with every string bounded and every collection capped, cheap to redact."""
    if isinstance(value, str):
        return bounded(value, leaf + SCAN_MARGIN)
    if isinstance(value, Mapping):
        return {k: shrink(v, leaf) for k, v in list(value.items())[:MAX_ITEMS]}
    if isinstance(value, list | tuple):
        return [shrink(v, leaf) for v in value[:MAX_ITEMS]]
    return value


def shown(value: Any, limit: int, key: str | None = None) -> str:
    """Any value as clean mrkdwn of at most `limit` characters; masked entirely when `key` names a secret."""
    safe = redact(shrink(value, limit), key)
    text = safe if isinstance(safe, str) else json.dumps(safe, ensure_ascii=False, default=str)
    return truncate_mrkdwn(escape(text), limit)


def code(value: object, limit: int = 200) -> str:
    """Inline code for an identifier or short value, at most `limit` characters with its backticks."""
    inner = clipped(value, max(limit - 2, 1)).replace("`", "'")
    return f"`{inner}`" if inner else "` `"


def code_block(value: object, limit: int) -> str:
    """A fenced code block of free text (an error, say) that fits in `limit` characters."""
    room = max(limit - 2 * len(FENCE), 1)
    inner = truncate_mrkdwn(clean(value, room).replace("`", "'"), room)
    return f"{FENCE}{inner}{FENCE}"


def mention(actor: str) -> str:
    """A Slack user mention for user ids; other actors (executors, the reconciler) as inline code."""
    if is_user(actor):
        return f"<@{actor}>"
    return code(actor, 80)


def is_user(actor: str) -> bool:
    """Whether `actor` is a Slack user id (not an executor, the reconciler or a CLI user)."""
    return _SLACK_USER.fullmatch(actor) is not None


_PLAIN_ONLY = re.compile(r"[*`~]")  # mrkdwn marks a notification would show as they are (ids keep their _)


def plain(text: str) -> str:
    """Text for a push notification, which shows mrkdwn raw: its bold, code and strike marks removed."""
    return _PLAIN_ONLY.sub("", text)


_RAW_USER = re.compile(r"(?<![<@\w])@?([UW][A-Z0-9]{6,})\b")


def with_mentions(mrkdwn: str, people: Iterable[str]) -> str:
    """Already-escaped text whose raw ids of `people` (`U0ALICE01`, `@U0ALICE01`) become mentions: stored reasons
    name people by id, which means nothing to a reader. Only those people: a word like `UNAVAILABLE` stays a word,
    and a reason someone typed cannot ping anyone else."""
    known = {p for p in people if is_user(p)}
    return _RAW_USER.sub(lambda m: f"<@{m.group(1)}>" if m.group(1) in known else m.group(0), mrkdwn)


def channel_link(channel: str) -> str:
    """A channel reference for channel ids, the escaped name otherwise."""
    if _SLACK_CHANNEL.fullmatch(channel):
        return f"<#{channel}>"
    return "#" + clipped(channel, 80)


def link(url: str | None, label: str) -> str:
    """A mrkdwn link to `url` labelled with already-clean `label`; the bare label when the url is unusable."""
    if not url or _UNSAFE_IN_URL.search(url) or not url.startswith(("https://", "http://")) or len(url) > 1000:
        return label
    return f"<{url}|{label.replace('|', '/')}>"


def ticket_text(plan: object) -> str | None:
    """A plan's change ticket as mrkdwn, linked when the rule gives a link (None when it carries no ticket)."""
    if not isinstance(plan, dict) or not plan.get("ticket"):
        return None
    url = plan.get("ticket_url")
    return link(url if isinstance(url, str) else None, code(plan["ticket"], 80))


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def slack_date(moment: datetime) -> str:
    """A date Slack shows in the reader's time zone, with a UTC fallback for clients that cannot."""
    utc = _utc(moment)
    return f"<!date^{int(utc.timestamp())}^{{date_short_pretty}} {{time}}|{utc:%Y-%m-%d %H:%M} UTC>"


def slack_ago(moment: datetime) -> str:
    """How long ago, counted by Slack in the reader's clock as time passes (`{ago}`), with a UTC fallback."""
    utc = _utc(moment)
    return f"<!date^{int(utc.timestamp())}^{{ago}}|since {utc:%H:%M} UTC>"


def duration(seconds: float) -> str:
    """A duration as people say it (`5 h 12 min`, `40 s`): the one format of the engine's messages too."""
    return in_words(seconds)


def elapsed(since: datetime, now: datetime) -> float:
    """Seconds from `since` to `now`, both read as UTC."""
    return (_utc(now) - _utc(since)).total_seconds()


def bullets(
    items: Sequence[Any],
    limit: int,
    render: Callable[[Any, int], str] = clipped,
    *,
    item_limit: int = 600,
    empty: str = "none",
) -> str:
    """A bullet list of at most `limit` characters; `render(item, room)` is called only for items that fit."""
    if not items:
        return f"_{escape(empty)}_"
    budget = max(limit - _MORE_ROOM, 16)
    lines: list[str] = []
    used = 0
    for item in items:
        room = min(item_limit, budget - used - (1 if lines else 0))
        if room < 24 and lines:
            break
        line = truncate_mrkdwn("• " + render(item, max(room - 2, 1)), max(room, 1))
        used += len(line) + (1 if lines else 0)
        lines.append(line)
    if len(lines) < len(items):
        lines.append(f"_{ELLIPSIS}and {len(items) - len(lines)} more_")
    return "\n".join(lines)


def pairs(values: object, limit: int = 400) -> str:
    """A mapping of ids or observations as `key=value` pairs, each redacted by key and text; else cleaned text."""
    if not isinstance(values, Mapping):
        return shown(values, limit)
    parts: list[str] = []
    used = 0
    for key, value in list(values.items())[:MAX_ITEMS]:
        room = limit - used
        if room < 16:
            parts.append(ELLIPSIS)
            break
        part = f"{clipped(key, 80)}={shown(value, room, str(key))}"
        parts.append(part)
        used += len(part) + 2
    return truncate_mrkdwn(", ".join(parts), limit)
