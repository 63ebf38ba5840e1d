"""Pure Block Kit renderers: frozen domain objects in, Slack payloads that respect Slack's limits out."""

from __future__ import annotations

from bot.blocks.digest import AttentionItem, Digest, render_digest
from bot.blocks.home import render_home
from bot.blocks.modals import render_reason_modal, render_request_modal
from bot.blocks.plan import plan_fallback_text, render_plan_message
from bot.blocks.thread import render_event, render_step, render_verdict

__all__ = [
    "AttentionItem",
    "Digest",
    "plan_fallback_text",
    "render_digest",
    "render_event",
    "render_home",
    "render_plan_message",
    "render_reason_modal",
    "render_request_modal",
    "render_step",
    "render_verdict",
]
