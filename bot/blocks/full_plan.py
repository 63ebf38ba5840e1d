"""The whole plan of an intent in a modal: what an approver reads before approving, and what anyone may open."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.blocks.buttons import AWAITING_APPROVAL
from bot.blocks.kit import FIELD_TEXT, SECTION_TEXT, Block, context, fields, modal, section
from bot.blocks.plan import PlanFacts, change_line, current_approvals
from bot.blocks.status import status_badge
from bot.blocks.text import bullets, clipped, code, mention, ticket_text
from bot.blocks.words import Change, changes
from bot.ids import CallbackId, ModalMeta
from workflows.authoring import Risk
from workflows.service import IntentView

TITLE = "Plan"
APPROVE = "Approve"
_LIST = SECTION_TEXT - 40  # a titled bullet list section
_HEADLINE = 2  # changes named in the first line; the list below names them all
_ROLLBACK = {
    "compensate": ":leftwards_arrow_with_hook: undone by compensation",
    "none": "nothing to undo",
    "irreversible": ":warning: *irreversible*",
}


def _change(change: Change, room: int) -> str:
    return change_line(change, room, bold=False)


def _headline(found: Sequence[Change], fallback: str) -> str:
    """The first changes in words (their names as code, no detail); `fallback` when none."""
    if not found:
        return clipped(fallback, 1000)
    said = "; ".join(change_line(c, 400, bold=False, detail=False) for c in found[:_HEADLINE])
    more = len(found) - _HEADLINE
    return said + (f"; and {more} more change{'s' if more != 1 else ''}" if more > 0 else "")


def _rollback(entry: tuple[str, str], room: int) -> str:
    step, how = entry
    return f"{code(step, min(room // 2, 120))}: {_ROLLBACK.get(how) or clipped(how, 100)}"


def _plan_sections(facts: PlanFacts, found: Sequence[Change]) -> list[Block]:
    limits = f"\n_Limits:_ {clipped(facts.rollback_limits, 800)}" if facts.rollback_limits else ""
    return [
        section("*Expected changes*\n" + bullets(found, _LIST, _change, empty="no changes")),
        section("*Targets*\n" + bullets(facts.targets, _LIST, code, item_limit=300)),
        *fields(
            [
                ("Locks", bullets(facts.locks, FIELD_TEXT - 20, code, item_limit=300)),
                ("Blast radius", clipped(facts.blast_radius, FIELD_TEXT - 20) or "_not stated_"),
            ]
        ),
        section("*Conflicts*\n" + bullets(facts.conflicts, _LIST, empty="none known")),
        section("*Rollback*\n" + bullets(facts.rollback, _LIST - 820, _rollback, empty="no steps") + limits),
        section("*Verification*\n" + bullets(facts.verification, _LIST, empty="no checks")),
    ]


def _when(view: IntentView) -> str:
    schedule, now = view.schedule, view.as_of
    if schedule is None or now is None:
        return "as soon as enough approvals are in"
    return f"once enough approvals are in: it {clipped(schedule.describe(now), 300)}"


def render_plan_modal(
    view: IntentView, summary: str, risk: Risk, *, approve: bool, channel: str = ""
) -> dict[str, Any]:
    """The intent's whole plan in a modal; with `approve` (and the intent still awaiting approval) its submit
    approves exactly this plan. `channel`: where the answer to that approval goes (empty: by DM)."""
    intent = view.intent
    facts, found = PlanFacts.read(intent.plan), changes(intent.plan)
    approving = approve and intent.status in AWAITING_APPROVAL
    blocks: list[Block] = [
        section(_headline(found, summary)),
        context([f"{code(intent.workflow)}: {clipped(summary, 600)}", status_badge(intent.status)]),
        *fields(
            [
                ("Environment", code(intent.environment)),
                ("Risk", f"*{risk.value}*" if risk is Risk.HIGH else risk.value),
                ("Requested by", mention(intent.requester)),
                ("Approvals", f"{len(current_approvals(view))}/{view.approvals_needed}"),
                ("Plan", code(intent.plan_hash[:12])),
                ("Intent", code(intent.id, 60)),
                *([("Change ticket", ticket)] if (ticket := ticket_text(intent.plan)) else []),
            ]
        ),
        *_plan_sections(facts, found),
    ]
    if approving:
        blocks.append(
            context(
                [
                    f"*{APPROVE}* approves plan {code(intent.plan_hash[:12])} as shown here; it runs in "
                    f"{code(intent.environment)} {_when(view)}. If the plan changes first, nothing is approved."
                ]
            )
        )
    elif approve:
        blocks.append(context([f"Nothing to approve: it is {status_badge(intent.status)} now."]))
    meta = ModalMeta(
        action="approve" if approving else "view",
        channel=channel,
        intent_id=intent.id,
        plan_hash=intent.plan_hash,
        version=intent.version,
    )
    return modal(
        title=TITLE,
        callback_id=CallbackId.APPROVE_MODAL if approving else CallbackId.PLAN_MODAL,
        private_metadata=meta.encode(),
        blocks=blocks,
        submit=APPROVE if approving else None,
        close="Back" if approving else "Close",
    )
