"""Block Kit validation with Slack's documented limits, reporting problems the way Slack words them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Surface = Literal["message", "modal", "home"]


@dataclass(frozen=True)
class Limits:
    """Slack's Block Kit and message size limits (override a field to loosen or tighten one)."""

    message_blocks: int = 50
    view_blocks: int = 100
    message_text: int = 40000
    section_text: int = 3000
    section_fields: int = 10
    field_text: int = 2000
    header_text: int = 150
    markdown_text: int = 12000
    button_text: int = 75
    accessibility_label: int = 75
    confirm_title: int = 100
    confirm_text: int = 300
    confirm_button: int = 30
    button_value: int = 2000
    url: int = 3000
    id_length: int = 255
    actions_elements: int = 25
    context_elements: int = 10
    label_text: int = 2000
    placeholder_text: int = 150
    options: int = 100
    option_text: int = 75
    option_value: int = 150
    overflow_options: int = 5
    choice_options: int = 10
    alt_text: int = 2000
    view_title: int = 24
    view_button: int = 24
    private_metadata: int = 3000


DEFAULT_LIMITS = Limits()

_BLOCKS_BY_SURFACE: dict[str, frozenset[str]] = {
    "message": frozenset(
        {
            "section",
            "header",
            "actions",
            "context",
            "divider",
            "image",
            "input",
            "rich_text",
            "markdown",
            "file",
            "video",
        }
    ),
    "modal": frozenset({"section", "header", "actions", "context", "divider", "image", "input", "rich_text", "video"}),
    "home": frozenset({"section", "header", "actions", "context", "divider", "image", "input", "rich_text", "video"}),
}
_SELECTS = frozenset(
    {
        "static_select",
        "external_select",
        "users_select",
        "conversations_select",
        "channels_select",
        "multi_static_select",
        "multi_external_select",
        "multi_users_select",
        "multi_conversations_select",
        "multi_channels_select",
    }
)
_TEXT_INPUTS = frozenset(
    {
        "plain_text_input",
        "number_input",
        "email_text_input",
        "url_text_input",
        "rich_text_input",
        "file_input",
    }
)
_PICKERS = frozenset({"datepicker", "timepicker", "datetimepicker"})
_CHOICES = frozenset({"checkboxes", "radio_buttons"})
_INTERACTIVE = frozenset({"button", "overflow", "workflow_button"}) | _SELECTS | _PICKERS | _CHOICES
_INPUT_ELEMENTS = _SELECTS | _TEXT_INPUTS | _PICKERS | _CHOICES
_ACCESSORIES = frozenset({"button", "overflow", "image"}) | _SELECTS | _PICKERS | _CHOICES


class _Report:
    """Collects problems as Slack phrases them: `[ERROR] what [json-pointer:/where]`."""

    def __init__(self, limits: Limits) -> None:
        """Start an empty report against `limits`."""
        self.limits = limits
        self.problems: list[str] = []

    def error(self, what: str, where: str) -> None:
        """Record one problem at a JSON pointer."""
        self.problems.append(f"[ERROR] {what} [json-pointer:{where}]")

    def text(self, obj: Any, where: str, limit: int, *, plain_only: bool = False, required: bool = True) -> None:
        """Check a composition text object: its type and its length."""
        if obj is None:
            if required:
                self.error("missing required field: text", where)
            return
        if not isinstance(obj, dict):
            self.error("must be a text object", where)
            return
        kinds = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
        if obj.get("type") not in kinds:
            self.error(f"must be one of the following: {', '.join(kinds)}", f"{where}/type")
        self.length(obj.get("text"), f"{where}/text", limit, minimum=1)

    def length(self, value: Any, where: str, limit: int, *, minimum: int = 0) -> None:
        """Check that a string field is a string of at most `limit` characters."""
        if not isinstance(value, str):
            self.error("must be a string", where)
        elif len(value) > limit:
            self.error(f"must be less than {limit + 1} characters", where)
        elif len(value) < minimum:
            self.error(f"must be more than {minimum - 1} characters", where)

    def optional_length(self, obj: dict[str, Any], key: str, where: str, limit: int) -> None:
        """Check a string field only when it is present."""
        if key in obj and obj[key] is not None:
            self.length(obj[key], f"{where}/{key}", limit)

    def count(self, items: Any, where: str, limit: int | None, *, minimum: int = 0) -> list[Any]:
        """Check that a list field holds between `minimum` and `limit` (None: any) items; return its items."""
        if not isinstance(items, list):
            self.error("must be an array", where)
            return []
        if limit is not None and len(items) > limit:
            self.error(f"no more than {limit} items allowed", where)
        elif len(items) < minimum:
            self.error(f"must provide at least {minimum} items", where)
        return items


def validate_blocks(
    blocks: Any, surface: Surface = "message", limits: Limits = DEFAULT_LIMITS, pointer: str = "/blocks"
) -> list[str]:
    """Return Slack-style problem lines for a list of blocks on a surface (empty when valid)."""
    report = _Report(limits)
    cap = limits.message_blocks if surface == "message" else limits.view_blocks
    items = report.count(blocks, pointer, cap)
    seen: set[str] = set()
    for i, block in enumerate(items):
        where = f"{pointer}/{i}"
        if not isinstance(block, dict):
            report.error("must be an object", where)
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            report.length(block_id, f"{where}/block_id", limits.id_length, minimum=1)
            if block_id in seen:
                report.error(f"duplicate block_id: {block_id}", f"{where}/block_id")
            seen.add(str(block_id))
        kind = block.get("type")
        if kind not in _BLOCKS_BY_SURFACE[surface]:
            report.error(f"unsupported block type {kind!r} on a {surface}", f"{where}/type")
            continue
        _check_block(report, str(kind), block, where)
    return report.problems


def _check_block(report: _Report, kind: str, block: dict[str, Any], where: str) -> None:
    """Check one block of a known type."""
    lim = report.limits
    if kind == "section":
        if block.get("text") is None and block.get("fields") is None:
            report.error("must provide either text or fields", where)
        if block.get("text") is not None:
            report.text(block["text"], f"{where}/text", lim.section_text)
        if block.get("fields") is not None:
            fields = report.count(block["fields"], f"{where}/fields", lim.section_fields, minimum=1)
            for j, fld in enumerate(fields):
                report.text(fld, f"{where}/fields/{j}", lim.field_text)
        if block.get("accessory") is not None:
            _check_element(report, block["accessory"], f"{where}/accessory", _ACCESSORIES)
    elif kind == "header":
        report.text(block.get("text"), f"{where}/text", lim.header_text, plain_only=True)
    elif kind == "markdown":
        report.length(block.get("text"), f"{where}/text", lim.markdown_text, minimum=1)
    elif kind == "actions":
        elements = report.count(block.get("elements"), f"{where}/elements", lim.actions_elements, minimum=1)
        action_ids: set[str] = set()
        for j, element in enumerate(elements):
            _check_element(report, element, f"{where}/elements/{j}", _INTERACTIVE)
            action_id = element.get("action_id") if isinstance(element, dict) else None
            if isinstance(action_id, str):
                if action_id in action_ids:
                    report.error(f"duplicate action_id: {action_id}", f"{where}/elements/{j}/action_id")
                action_ids.add(action_id)
    elif kind == "context":
        elements = report.count(block.get("elements"), f"{where}/elements", lim.context_elements, minimum=1)
        for j, element in enumerate(elements):
            if isinstance(element, dict) and element.get("type") == "image":
                _check_element(report, element, f"{where}/elements/{j}", frozenset({"image"}))
            else:
                report.text(element, f"{where}/elements/{j}", lim.section_text)
    elif kind == "image":
        report.length(block.get("alt_text"), f"{where}/alt_text", lim.alt_text, minimum=1)
        if "slack_file" not in block:
            report.length(block.get("image_url"), f"{where}/image_url", lim.url, minimum=1)
        if block.get("title") is not None:
            report.text(block["title"], f"{where}/title", lim.alt_text, plain_only=True)
    elif kind == "input":
        report.text(block.get("label"), f"{where}/label", lim.label_text, plain_only=True)
        if block.get("hint") is not None:
            report.text(block["hint"], f"{where}/hint", lim.label_text, plain_only=True)
        if block.get("element") is None:
            report.error("missing required field: element", f"{where}/element")
        else:
            _check_element(report, block["element"], f"{where}/element", _INPUT_ELEMENTS)
    elif kind == "rich_text":
        report.count(block.get("elements"), f"{where}/elements", None, minimum=1)


def _check_element(report: _Report, element: Any, where: str, allowed: frozenset[str]) -> None:
    """Check one block element (button, select, input, image...)."""
    lim = report.limits
    if not isinstance(element, dict):
        report.error("must be an object", where)
        return
    kind = element.get("type")
    if kind not in allowed:
        report.error(f"unsupported element type {kind!r} here", f"{where}/type")
        return
    if "action_id" in element:
        report.length(element["action_id"], f"{where}/action_id", lim.id_length, minimum=1)
    if kind == "image":
        report.length(element.get("alt_text"), f"{where}/alt_text", lim.alt_text, minimum=1)
        if "slack_file" not in element:
            report.length(element.get("image_url"), f"{where}/image_url", lim.url, minimum=1)
        return
    if kind in ("button", "workflow_button"):
        report.text(element.get("text"), f"{where}/text", lim.button_text, plain_only=True)
        report.optional_length(element, "value", where, lim.button_value)
        report.optional_length(element, "url", where, lim.url)
        if element.get("accessibility_label") is not None:
            where_label = f"{where}/accessibility_label"
            report.length(element["accessibility_label"], where_label, lim.accessibility_label, minimum=1)
        if element.get("style") not in (None, "primary", "danger"):
            report.error("must be one of the following: primary, danger", f"{where}/style")
    if element.get("placeholder") is not None:
        report.text(element["placeholder"], f"{where}/placeholder", lim.placeholder_text, plain_only=True)
    if element.get("confirm") is not None:
        _check_confirm(report, element["confirm"], f"{where}/confirm")
    if kind in _SELECTS or kind == "overflow" or kind in _CHOICES:
        _check_options(report, element, where, str(kind))


def _check_confirm(report: _Report, confirm: Any, where: str) -> None:
    """Check a confirmation dialog object: title, text, confirm and deny labels, style."""
    lim = report.limits
    if not isinstance(confirm, dict):
        report.error("must be an object", where)
        return
    report.text(confirm.get("title"), f"{where}/title", lim.confirm_title, plain_only=True)
    report.text(confirm.get("text"), f"{where}/text", lim.confirm_text)
    report.text(confirm.get("confirm"), f"{where}/confirm", lim.confirm_button, plain_only=True)
    report.text(confirm.get("deny"), f"{where}/deny", lim.confirm_button, plain_only=True)
    if confirm.get("style") not in (None, "primary", "danger"):
        report.error("must be one of the following: primary, danger", f"{where}/style")


def _check_options(report: _Report, element: dict[str, Any], where: str, kind: str) -> None:
    """Check the options of a select, overflow menu, checkbox group or radio group."""
    lim = report.limits
    if kind in ("static_select", "multi_static_select") and "option_groups" not in element:
        options = report.count(element.get("options"), f"{where}/options", lim.options, minimum=1)
    elif kind == "overflow":
        options = report.count(element.get("options"), f"{where}/options", lim.overflow_options, minimum=1)
    elif kind in _CHOICES:
        options = report.count(element.get("options"), f"{where}/options", lim.choice_options, minimum=1)
    else:
        return
    for j, option in enumerate(options):
        if not isinstance(option, dict):
            report.error("must be an object", f"{where}/options/{j}")
            continue
        report.text(option.get("text"), f"{where}/options/{j}/text", lim.option_text)
        report.length(option.get("value"), f"{where}/options/{j}/value", lim.option_value, minimum=1)


def validate_view(view: Any, expected: Literal["modal", "home"], limits: Limits = DEFAULT_LIMITS) -> list[str]:
    """Return Slack-style problem lines for a modal or home tab view (empty when valid)."""
    report = _Report(limits)
    if not isinstance(view, dict):
        report.error("must be an object", "/view")
        return report.problems
    if view.get("type") != expected:
        report.error(f"must be a {expected} view, got type {view.get('type')!r}", "/view/type")
        return report.problems
    if expected == "modal":
        report.text(view.get("title"), "/view/title", limits.view_title, plain_only=True)
        for key in ("submit", "close"):
            if view.get(key) is not None:
                report.text(view[key], f"/view/{key}", limits.view_button, plain_only=True)
        blocks = view.get("blocks")
        has_input = isinstance(blocks, list) and any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
        if has_input and view.get("submit") is None:
            report.error("a modal with input blocks must have a submit button", "/view/submit")
    report.optional_length(view, "callback_id", "/view", limits.id_length)
    report.optional_length(view, "external_id", "/view", limits.id_length)
    report.optional_length(view, "private_metadata", "/view", limits.private_metadata)
    problems = report.problems
    problems.extend(validate_blocks(view.get("blocks"), expected, limits, pointer="/view/blocks"))
    return problems


def check_message_text(text: Any, limits: Limits = DEFAULT_LIMITS) -> list[str]:
    """Return a problem line when the top-level `text` argument is too long or not a string."""
    report = _Report(limits)
    if text is not None:
        report.length(text, "/text", limits.message_text)
    return report.problems
