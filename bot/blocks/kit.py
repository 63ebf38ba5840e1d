"""Block Kit builders that enforce Slack's limits, so a renderer cannot produce a payload Slack refuses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from bot.blocks.text import ELLIPSIS, SCAN_MARGIN, bounded, truncate, truncate_mrkdwn
from bot.ids import ActionId, ButtonValue, CallbackId
from workflows.redaction import redact_text

Block = dict[str, Any]
Style = Literal["primary", "danger"]

MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
MESSAGE_TEXT = 3000  # the notification fallback; Slack allows 40,000 but nobody reads that much in a toast
SECTION_TEXT = 3000
SECTION_FIELDS = 10
FIELD_TEXT = 2000
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
CONTEXT_TEXT = 3000
BUTTON_TEXT = 75
ACCESSIBILITY_LABEL = 75
BUTTON_VALUE = 2000
ID_LENGTH = 255
ACTIONS_ELEMENTS = 25
VIEW_TITLE = 24
VIEW_BUTTON = 24
PRIVATE_METADATA = 3000
LABEL_TEXT = 2000
HINT_TEXT = 2000
PLACEHOLDER_TEXT = 150
INPUT_VALUE = 3000
OPTIONS = 100
OVERFLOW_OPTIONS = 5
OPTION_TEXT = 75
OPTION_VALUE = 150
CONFIRM_TITLE = 100
CONFIRM_TEXT = 300
CONFIRM_BUTTON = 30
EMPTY = "—"  # Slack refuses empty text objects


def _redacted(text: str, limit: int) -> str:
    """A last line of defence: every text object is redacted, after a cut that keeps that cheap."""
    return redact_text(bounded(text, limit + SCAN_MARGIN)) or EMPTY


def _plain(text: str, limit: int) -> Block:
    return {"type": "plain_text", "text": truncate(_redacted(text, limit), limit), "emoji": True}


def _mrkdwn(text: str, limit: int) -> Block:
    return {"type": "mrkdwn", "text": truncate_mrkdwn(_redacted(text, limit), limit)}


def ident(value: str) -> str:
    """An action_id or block_id within Slack's 255 characters (never empty)."""
    return value[:ID_LENGTH] or "_"


def fallback(text: str) -> str:
    """The top-level `text` of a message: what notifications and screen readers show."""
    return truncate_mrkdwn(_redacted(text, MESSAGE_TEXT), MESSAGE_TEXT)


# blocks ------------------------------------------------------------------------------------------


def header(text: str) -> Block:
    """A header block (plain text, at most 150 characters)."""
    return {"type": "header", "text": _plain(text, HEADER_TEXT)}


def section(text: str, *, accessory: Block | None = None, block_id: str | None = None) -> Block:
    """A mrkdwn section of at most 3,000 characters."""
    block: Block = {"type": "section", "text": _mrkdwn(text, SECTION_TEXT)}
    if accessory is not None:
        block["accessory"] = accessory
    if block_id is not None:
        block["block_id"] = ident(block_id)
    return block


def fields(items: Sequence[tuple[str, str]]) -> list[Block]:
    """(label, mrkdwn value) pairs as two-column sections of at most ten fields each."""
    cells = [_mrkdwn(f"*{label}*\n{value}", FIELD_TEXT) for label, value in items]
    return [{"type": "section", "fields": cells[i : i + SECTION_FIELDS]} for i in range(0, len(cells), SECTION_FIELDS)]


def context(texts: Sequence[str]) -> Block:
    """A context line of mrkdwn elements; past ten, the rest are joined into the last one."""
    parts = [t for t in texts if t] or [EMPTY]
    if len(parts) > CONTEXT_ELEMENTS:
        parts = [*parts[: CONTEXT_ELEMENTS - 1], " · ".join(parts[CONTEXT_ELEMENTS - 1 :])]
    return {"type": "context", "elements": [_mrkdwn(p, CONTEXT_TEXT) for p in parts]}


def divider() -> Block:
    """A horizontal rule."""
    return {"type": "divider"}


def actions(elements: Sequence[Block], *, block_id: str | None = None) -> Block:
    """An actions block of at most 25 interactive elements."""
    block: Block = {"type": "actions", "elements": list(elements[:ACTIONS_ELEMENTS])}
    if block_id is not None:
        block["block_id"] = ident(block_id)
    return block


def fit_blocks(blocks: Sequence[Block], limit: int, *, keep_tail: int = 0) -> list[Block]:
    """At most `limit` blocks: the last `keep_tail` (the buttons) are kept, a note replaces what is dropped."""
    if len(blocks) <= limit:
        return list(blocks)
    keep_tail = min(keep_tail, limit - 1)
    tail = list(blocks[len(blocks) - keep_tail :]) if keep_tail else []
    room = limit - len(tail) - 1
    dropped = len(blocks) - len(tail) - room
    note = context([f"_{ELLIPSIS}{dropped} more block(s) not shown; the CLI has the full detail_"])
    return [*blocks[:room], note, *tail]


# elements ----------------------------------------------------------------------------------------


def confirm_dialog(title: str, text: str, confirm: str, deny: str = "Back", *, style: Style = "primary") -> Block:
    """A confirmation dialog for a button."""
    return {
        "title": _plain(title, CONFIRM_TITLE),
        "text": _plain(text, CONFIRM_TEXT),
        "confirm": _plain(confirm, CONFIRM_BUTTON),
        "deny": _plain(deny, CONFIRM_BUTTON),
        "style": style,
    }


def button(
    text: str,
    action_id: ActionId,
    value: ButtonValue,
    *,
    label: str,
    style: Style | None = None,
    confirm: Block | None = None,
) -> Block:
    """A button whose value is a typed ButtonValue (its field caps keep it far below 2,000 characters).

    `label` is what a screen reader says instead of the short text: which change the button acts on.
    """
    element: Block = {
        "type": "button",
        "text": _plain(text, BUTTON_TEXT),
        "action_id": ident(action_id.value),
        "value": value.encode()[:BUTTON_VALUE],
        "accessibility_label": truncate(_redacted(label, ACCESSIBILITY_LABEL), ACCESSIBILITY_LABEL),
    }
    if style is not None:
        element["style"] = style
    if confirm is not None:
        element["confirm"] = confirm
    return element


def overflow(action_id: ActionId, options: Sequence[tuple[str, ButtonValue]], *, confirm: Block | None = None) -> Block:
    """An overflow menu of at most 5 (label, ButtonValue) options; a pick arrives as its `selected_option`."""
    element: Block = {
        "type": "overflow",
        "action_id": ident(action_id.value),
        # ButtonValue's field caps keep its encoding under an option value's 150 characters.
        "options": [
            {"text": _plain(label, OPTION_TEXT), "value": value.encode()[:OPTION_VALUE]}
            for label, value in options[:OVERFLOW_OPTIONS]
        ],
    }
    if confirm is not None:
        element["confirm"] = confirm
    return element


def text_input(
    action_id: str,
    *,
    initial_value: str | None = None,
    placeholder: str | None = None,
    multiline: bool = False,
    min_length: int | None = None,
    max_length: int | None = None,
) -> Block:
    """A plain_text_input; lengths are clamped to what Slack accepts (0 to 3,000)."""
    element: Block = {"type": "plain_text_input", "action_id": ident(action_id), "multiline": multiline}
    top = min(max_length, INPUT_VALUE) if max_length is not None and max_length > 0 else INPUT_VALUE
    if max_length is not None and max_length > 0:
        element["max_length"] = top
    if min_length is not None and 0 < min_length <= top:
        element["min_length"] = min_length
    if initial_value:
        element["initial_value"] = initial_value[:top]
    if placeholder:
        element["placeholder"] = _plain(placeholder, PLACEHOLDER_TEXT)
    return element


def static_select(
    action_id: str, options: Sequence[tuple[str, str]], *, initial: str | None = None, placeholder: str | None = None
) -> Block:
    """A static_select of at most 100 (label, value) options; `initial` preselects a value when present."""
    rendered = [
        {"text": _plain(label, OPTION_TEXT), "value": value[:OPTION_VALUE] or EMPTY}
        for label, value in options[:OPTIONS]
    ]
    element: Block = {"type": "static_select", "action_id": ident(action_id), "options": rendered}
    chosen = next((o for o in rendered if initial is not None and o["value"] == initial[:OPTION_VALUE]), None)
    if chosen is not None:
        element["initial_option"] = chosen
    if placeholder:
        element["placeholder"] = _plain(placeholder, PLACEHOLDER_TEXT)
    return element


def input_block(block_id: str, label: str, element: Block, *, hint: str | None = None, optional: bool = False) -> Block:
    """An input block with a plain-text label (and hint) of at most 2,000 characters."""
    block: Block = {
        "type": "input",
        "block_id": ident(block_id),
        "label": _plain(label, LABEL_TEXT),
        "element": element,
    }
    if hint:
        block["hint"] = _plain(hint, HINT_TEXT)
    if optional:
        block["optional"] = True
    return block


# views -------------------------------------------------------------------------------------------


def modal(
    *,
    title: str,
    callback_id: CallbackId,
    private_metadata: str,
    blocks: Sequence[Block],
    submit: str | None,
    close: str = "Back",  # never "Cancel": that is the button that stops a change
) -> Block:
    """A modal view of at most 100 blocks with a title, submit and close of at most 24 characters."""
    view: Block = {
        "type": "modal",
        "callback_id": ident(callback_id.value),
        "title": _plain(title, VIEW_TITLE),
        "close": _plain(close, VIEW_BUTTON),
        # ModalMeta's field caps keep this far below 3,000; a clipped value would fail to decode, not leak.
        "private_metadata": private_metadata[:PRIVATE_METADATA],
        "blocks": fit_blocks(blocks, VIEW_BLOCKS),
    }
    if submit is not None:
        view["submit"] = _plain(submit, VIEW_BUTTON)
    return view


def home(blocks: Sequence[Block]) -> Block:
    """A home tab view of at most 100 blocks."""
    return {"type": "home", "blocks": fit_blocks(blocks, VIEW_BLOCKS)}
