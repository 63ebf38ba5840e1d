"""Modals: the request form generated from a workflow's input model, and the reason form for Deny and friends."""

from __future__ import annotations

import json
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from bot.blocks.kit import INPUT_VALUE, Block, context, input_block, modal, section, static_select, text_input
from bot.blocks.text import bounded, clipped, code
from bot.ids import FIELD_ACTION, REASON_ACTION, BlockId, CallbackId, ModalMeta
from workflows.authoring import WorkflowDefinition as WorkflowSpec
from workflows.redaction import redact
from workflows.tickets import TICKET

REASON_MAX = 2000

_BOUNDS = (
    ("minimum", "at least {}"),
    ("exclusiveMinimum", "more than {}"),
    ("maximum", "at most {}"),
    ("exclusiveMaximum", "less than {}"),
    ("minLength", "at least {} characters"),
    ("maxLength", "at most {} characters"),
    ("format", "format {}"),
    ("pattern", "must match {}"),
)


def _schema_of(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """A property's schema with a `$ref` resolved and an Optional's non-null branch merged in."""
    merged = dict(prop)
    for branch in prop.get("anyOf", ()):
        if isinstance(branch, dict) and branch.get("type") != "null":
            merged = {**branch, **merged}
            break
    ref = merged.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        merged = {**defs.get(ref.removeprefix("#/$defs/"), {}), **merged}
    return merged


def _constraints(schema: dict[str, Any]) -> list[str]:
    found = [template.format(schema[key]) for key, template in _BOUNDS if key in schema]
    if isinstance(schema.get("enum"), list):
        found.append("one of " + ", ".join(str(v) for v in schema["enum"]))
    if schema.get("type") not in (None, "string"):
        found.append(f"a {schema['type']}")
    return found


def _default_text(name: str, info: FieldInfo) -> str | None:
    """The default as the text a user would type; None when there is none, it is too long, or it looks secret."""
    default = info.default
    if default is PydanticUndefined or default is None:
        return None
    text = default if isinstance(default, str) else json.dumps(default, default=str)
    if len(text) > INPUT_VALUE or redact(text, name) != text:
        return None
    return text


def _field_input(name: str, info: FieldInfo, schema: dict[str, Any]) -> Block:
    default = _default_text(name, info)
    # Plain-text hints need no escaping, and kit redacts every text object it builds.
    described = info.description or str(schema.get("description") or "")
    hint = [bounded(described, 1000), *(bounded(c, 300) for c in _constraints(schema))]
    if default is not None:
        hint.append(f"default {default}")
    elif not info.is_required():
        hint.append("optional, has a default" if info.default is not PydanticUndefined else "optional")
    max_length, min_length, examples = schema.get("maxLength"), schema.get("minLength"), schema.get("examples")
    element = text_input(
        FIELD_ACTION,
        initial_value=default,
        placeholder=f"e.g. {examples[0]}" if isinstance(examples, list) and examples else None,
        max_length=max_length if isinstance(max_length, int) else None,
        min_length=min_length if isinstance(min_length, int) else None,
    )
    hint_text = "; ".join(h for h in hint if h)
    return input_block(info.alias or name, name, element, hint=hint_text, optional=not info.is_required())


def _environment(environments: list[str]) -> Block:
    names = list(dict.fromkeys(environments))
    if not names:
        return section(":warning: No environments are configured, so nothing can be requested yet.")
    element = static_select(
        FIELD_ACTION,
        [(env, env) for env in names],
        initial=names[0] if len(names) == 1 else None,
        placeholder="Choose an environment",
    )
    return input_block(BlockId.ENVIRONMENT.value, "Environment", element)


def render_request_modal(
    spec: WorkflowSpec, environments: list[str], meta: ModalMeta, tickets: str | None = None
) -> dict[str, Any]:
    """A request form for `spec`: one text input per field of its input model, plus the environment, and the change
    ticket when an environment asks for one (`tickets`: the rules, e.g. "prod: ^[A-Z]+-\\d+$")."""
    schema = spec.params.model_json_schema()
    props: dict[str, Any] = schema.get("properties", {})
    defs: dict[str, Any] = schema.get("$defs", {})
    blocks: list[Block] = [
        section(f"*{clipped(spec.summary, 1000)}*\nWorkflow {code(spec.name)} · risk *{spec.risk.value}*"),
        context(
            [
                f"Blast radius: {clipped(spec.blast_radius, 1000)}",
                "Nothing runs yet: opsbot computes a plan and asks for approval first.",
            ]
        ),
        _environment(environments),
    ]
    if tickets:
        element = text_input(FIELD_ACTION, placeholder="e.g. OPS-123", max_length=64)
        blocks.append(input_block(TICKET, "Change ticket", element, hint=bounded(tickets, 1000), optional=True))
    for name, info in spec.params.model_fields.items():
        prop = props.get(info.alias or name, {})
        blocks.append(_field_input(name, info, _schema_of(prop, defs) if isinstance(prop, dict) else {}))
    return modal(
        title=f"Request {spec.name}" if len(spec.name) <= 16 else spec.name,
        callback_id=CallbackId.REQUEST_MODAL,
        private_metadata=meta.encode(),
        blocks=blocks,
        submit="Plan it",  # what the submit does: a plan, for an approver; nothing runs yet
    )


def render_reason_modal(
    title: str,
    meta: ModalMeta,
    required: bool,
    *,
    callback_id: CallbackId,
    submit: str = "Submit",
    hint: str | None = None,
) -> dict[str, Any]:
    """A one-field reason form; the caller names the callback (DENY_MODAL for Deny, REASON_MODAL otherwise) and
    the submit button after what it does ("Deny", "Mark done")."""
    hint = hint or (
        "Required. Say what you verified by hand, or why; it goes to the thread and the audit log."
        if required
        else "Optional. It goes to the thread and the audit log."
    )
    element = text_input(REASON_ACTION, multiline=True, max_length=REASON_MAX, min_length=1 if required else None)
    about = [f"Intent {code(meta.intent_id, 60)}"] if meta.intent_id else []
    if meta.plan_hash:
        about.append(f"plan {code(meta.plan_hash[:12])}")
    blocks: list[Block] = [context([" · ".join(about)])] if about else []
    blocks.append(input_block(BlockId.REASON.value, "Reason", element, hint=hint, optional=not required))
    return modal(
        title=title,
        callback_id=callback_id,
        private_metadata=meta.encode(),
        blocks=blocks,
        submit=submit,
    )
