"""Render a channel, its threads and ephemeral messages as readable text for demos and failing tests."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from typing import Any

from fakeslack.models import JSON, Ephemeral, Message


def _plain(obj: Any) -> str:
    """The text of a composition text object (or a bare string)."""
    if isinstance(obj, dict):
        return str(obj.get("text", ""))
    return "" if obj is None else str(obj)


def _element(element: JSON) -> str:
    """A one-token summary of a block element: buttons as [Label], inputs as <type>."""
    kind = element.get("type")
    if kind in ("button", "workflow_button"):
        style = element.get("style")
        return f"[{_plain(element.get('text'))}]" + (f"({style})" if style else "")
    if kind == "image":
        return f"<image: {element.get('alt_text', '')}>"
    if kind in ("plain_text", "mrkdwn"):
        return _plain(element)
    placeholder = _plain(element.get("placeholder"))
    return f"<{kind}{': ' + placeholder if placeholder else ''}>"


def _rich_text(node: Any) -> str:
    """Flatten the text runs of a rich_text block."""
    if isinstance(node, dict):
        if isinstance(node.get("text"), str):
            return str(node["text"])
        return "".join(_rich_text(child) for child in node.get("elements", []))
    if isinstance(node, list):
        return "".join(_rich_text(child) for child in node)
    return ""


def summarize_block(block: JSON) -> str:
    """One readable line (possibly multi-line text) for a Block Kit block."""
    kind = block.get("type")
    if kind == "header":
        return f"# {_plain(block.get('text'))}"
    if kind == "section":
        parts = [_plain(block.get("text"))] if block.get("text") else []
        if block.get("fields"):
            parts.append(" | ".join(_plain(f) for f in block["fields"]))
        if isinstance(block.get("accessory"), dict):
            parts.append(_element(block["accessory"]))
        return "\n".join(p for p in parts if p)
    if kind == "actions":
        return " ".join(_element(e) for e in block.get("elements", []) if isinstance(e, dict))
    if kind == "context":
        return "~ " + " · ".join(_element(e) for e in block.get("elements", []) if isinstance(e, dict))
    if kind == "divider":
        return "----"
    if kind == "input":
        element = block.get("element") if isinstance(block.get("element"), dict) else {}
        return f"{_plain(block.get('label'))}: {_element(element or {})}"
    if kind == "markdown":
        return str(block.get("text", ""))
    if kind == "rich_text":
        return _rich_text(block.get("elements", []))
    if kind == "image":
        return f"<image: {block.get('alt_text', '')}>"
    return f"<{kind}>"


def summarize(text: str, blocks: list[JSON]) -> str:
    """The content of a message: its blocks summarised when it has blocks, else its text."""
    if blocks:
        return "\n".join(summarize_block(b) for b in blocks if isinstance(b, dict))
    return text


def _clock(ts: str) -> str:
    """A message ts as a UTC wall-clock time."""
    return datetime.fromtimestamp(float(ts), tz=UTC).strftime("%H:%M:%S")


def _entry(head: str, body: str, indent: str) -> list[str]:
    """A header line followed by the body, each line indented under it."""
    lines = body.splitlines() or [""]
    first, rest = lines[0], lines[1:]
    out = [f"{indent}{head} {first}".rstrip()]
    pad = indent + " " * 4
    out.extend(textwrap.indent(line, pad) if line else pad.rstrip() for line in rest)
    return out


def _note(msg: Message) -> str:
    """Marks for edited / broadcast / deleted messages."""
    notes = []
    if msg.edits:
        notes.append(f"edited {len(msg.edits)}x")
    if msg.reply_broadcast:
        notes.append("also sent to channel")
    if msg.deleted:
        notes.append("deleted")
    return f" ({', '.join(notes)})" if notes else ""


def render(title: str, messages: list[Message], ephemerals: list[Ephemeral], names: dict[str, str]) -> str:
    """Render messages (parents, then their replies indented) and ephemerals interleaved by time."""
    parents = [m for m in messages if not m.is_reply]
    replies: dict[str, list[Message]] = {}
    for m in messages:
        if m.is_reply and m.thread_ts:
            replies.setdefault(m.thread_ts, []).append(m)
    top_ephemeral = [e for e in ephemerals if not e.thread_ts]
    threaded_ephemeral: dict[str, list[Ephemeral]] = {}
    for e in ephemerals:
        if e.thread_ts:
            threaded_ephemeral.setdefault(e.thread_ts, []).append(e)
    items: list[tuple[str, Message | Ephemeral]] = [(m.ts, m) for m in parents] + [(e.ts, e) for e in top_ephemeral]
    lines = [title, "=" * len(title)]
    for _, item in sorted(items, key=lambda pair: _ts_key(pair[0])):
        lines.extend(_render_item(item, names, ""))
        if isinstance(item, Message):
            children: list[Message | Ephemeral] = [
                *replies.get(item.ts, []),
                *threaded_ephemeral.get(item.ts, []),
            ]
            for child in sorted(children, key=lambda c: _ts_key(c.ts)):
                lines.extend(_render_item(child, names, "    ↳ "))
    if len(lines) == 2:
        lines.append("(no messages)")
    return "\n".join(lines)


def _render_item(item: Message | Ephemeral, names: dict[str, str], indent: str) -> list[str]:
    """The lines for one message or ephemeral message."""
    if isinstance(item, Message):
        who = names.get(item.user, item.user)
        return _entry(f"{_clock(item.ts)} @{who}{_note(item)}:", summarize(item.text, item.blocks), indent)
    note = " (deleted)" if item.deleted else (f" (replaced {len(item.replaced)}x)" if item.replaced else "")
    whom = names.get(item.user, item.user)
    return _entry(f"{_clock(item.ts)} [only @{whom} sees]{note}:", summarize(item.text, item.blocks), indent)


def _ts_key(ts: str) -> tuple[int, int]:
    """Sort key for a Slack ts."""
    seconds, _, micros = ts.partition(".")
    return int(seconds), int(micros or 0)
