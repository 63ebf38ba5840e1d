"""Pure Block Kit renderers: frozen domain objects in, Slack payloads that respect Slack's limits out."""

from __future__ import annotations

from bot.blocks.digest import AttentionItem, Digest, render_digest
from bot.blocks.full_plan import render_plan_modal
from bot.blocks.home import render_home
from bot.blocks.modals import render_reason_modal, render_request_modal
from bot.blocks.plan import plan_fallback_text, render_plan_message
from bot.blocks.progress import checklist
from bot.blocks.thread import render_verdict

__all__ = [
    "AttentionItem",
    "Digest",
    "checklist",
    "plan_fallback_text",
    "render_digest",
    "render_home",
    "render_plan_message",
    "render_plan_modal",
    "render_reason_modal",
    "render_request_modal",
    "render_verdict",
]
