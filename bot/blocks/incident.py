"""The notice in an environment's incident channel: the change, who asked, where it stands, and a link to its plan
message. It is edited with each status people are told about, so the incident channel ends with the outcome."""

from __future__ import annotations

from typing import Any

from bot.blocks.buttons import plan_risk
from bot.blocks.kit import fallback, section
from bot.blocks.plan import plan_fallback_text
from bot.blocks.status import status_badge
from bot.blocks.text import clipped, mention, plain
from bot.blocks.words import changes, summary
from workflows.service import IntentView


def render_incident_notice(view: IntentView, plan_link: str) -> dict[str, Any]:
    """(text, blocks) of the notice; `plan_link` is the plan message's permalink (or what stands for it)."""
    intent = view.intent
    risk = plan_risk(intent.plan)
    change = summary(changes(intent.plan), intent.workflow, detail=False)
    text = (
        f":rotating_light: {risk.value.capitalize()}-risk change in {clipped(intent.environment, 60)}: "
        f"{clipped(change, 600)}, requested by {mention(intent.requester)}\n"
        f"{status_badge(intent.status)} · <{plan_link}|open the plan message>"
    )
    return {
        "text": fallback(plain(f"{risk.value}-risk change: " + plan_fallback_text(view))),
        "blocks": [section(text)],
    }
