"""Pure renderers for the terminal: frozen domain objects in, rich renderables (or JSON documents) out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from workflows.model import Decision, Intent, IntentStatus
from workflows.reconciler import verdict_of
from workflows.redaction import redact, redact_text
from workflows.service import IntentView

_STATUS_STYLE = {
    IntentStatus.SUCCEEDED: "green",
    IntentStatus.FAILED: "red",
    IntentStatus.UNSAFE: "bold red",
    IntentStatus.UNKNOWN: "bold magenta",
    IntentStatus.BLOCKED: "yellow",
    IntentStatus.NEEDS_REAPPROVAL: "yellow",
    IntentStatus.CONVERGING: "cyan",
    IntentStatus.WAITING: "cyan",
    IntentStatus.SCHEDULED: "cyan",
}


def _status(status: IntentStatus) -> Text:
    return Text(status.value, style=_STATUS_STYLE.get(status, "bold"))


def render_plan(intent: Intent) -> RenderableType:
    plan: dict[str, Any] = redact(intent.plan)
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("intent", intent.id)
    table.add_row("workflow", plan["workflow"])
    table.add_row("environment", plan["environment"])
    table.add_row("requester", intent.requester)
    if plan.get("ticket"):
        table.add_row("change ticket", " ".join(str(t) for t in (plan["ticket"], plan.get("ticket_url")) if t))
    table.add_row("status", _status(intent.status))
    table.add_row("targets", "\n".join(plan["targets"]))
    if plan.get("purpose") == "compensation":
        table.add_row("purpose", f"compensation, proposed by {plan.get('requested_by') or '?'}")
    mutations = plan["mutations"]
    table.add_row(
        "mutations",
        "\n".join(f"{m['action']} {m.get('target') or m.get('resource')}: {m['detail']}" for m in mutations),
    )
    table.add_row("locks", "\n".join(plan["locks"]) or "none")
    if plan.get("conflicts"):
        table.add_row("conflicts", "\n".join(plan["conflicts"]))
    table.add_row("blast radius", plan["blast_radius"])
    table.add_row("risk", plan["risk"])
    table.add_row("rollback", "\n".join(f"{k}: {v}" for k, v in plan["rollback"].items()))
    if plan.get("rollback_limits"):
        table.add_row("rollback limits", plan["rollback_limits"])
    table.add_row("verification", "\n".join(plan["verification"]))
    table.add_row("plan hash", intent.plan_hash)
    return Panel(table, title=f"plan for {plan['workflow']}", expand=False)


def render_list(intents: list[Intent]) -> RenderableType:
    table = Table("id", "workflow", "env", "status", "requester", "updated", "reason")
    for i in intents:
        table.add_row(
            i.id,
            i.workflow,
            i.environment,
            _status(i.status),
            i.requester,
            i.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
            redact(i.status_reason or ""),
        )
    return table


def render_view(view: IntentView) -> RenderableType:
    g = view.guidance
    answers = Table.grid(padding=(0, 2))
    answers.add_column(style="bold")
    answers.add_column()
    answers.add_row("requested", g.requested)
    answers.add_row("changed", "\n".join(g.changed))
    answers.add_row("uncertain", "\n".join(g.uncertain))
    answers.add_row("you can now", "\n".join(f"{a.value}: {why}" for a, why in g.actions) or "nothing: this is final")

    steps = Table("#", "step", "status", "attempts", "external ids", "error", title="steps")
    for s in view.steps:
        ids = ", ".join(f"{k}={v}" for k, v in s.external_ids.items())
        steps.add_row(str(s.seq), s.name, s.status.value, str(s.attempts), ids, redact(s.error or ""))

    events = Table("seq", "at", "actor", "event", "detail", title="audit events")
    for e in view.events:
        detail = ", ".join(f"{k}={v}" for k, v in redact(e.data).items() if k not in ("params", "via"))
        via = e.data.get("via")
        actor = f"{e.actor} (via {via})" if via else e.actor
        events.add_row(str(e.seq), e.created_at.strftime("%H:%M:%S"), actor, e.kind, detail[:160])

    approvals = f"{len({a.actor for a in view.approvals if a.decision.value == 'approve'})}/{view.approvals_needed}"
    header = Text.assemble(
        ("intent ", "bold"),
        view.intent.id,
        "  ",
        _status(view.intent.status),
        f"  approvals {approvals}  ",
        (view.intent.status_reason or "", "italic"),
    )
    if view.schedule is not None and view.as_of is not None:
        head = "scheduled" if view.intent.status is IntentStatus.SCHEDULED else "once approved"
        header.append(f"\n{head}: {view.schedule.describe(view.as_of)} ({_when(view.schedule.starts_at)})")
    return Group(
        header, render_plan(view.intent), Panel(answers, title="the four answers", expand=False), steps, events
    )


# --- JSON for scripts: stable field names (documented in the README); adding a field is not a breaking change ---

JSON_FORMAT = 1


def _when(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z (`2025-01-31T09:15:02.123456Z`); naive times from the store are UTC."""
    if moment is None:
        return None
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def intent_json(intent: Intent) -> dict[str, Any]:
    """The fields `intents list --json` gives for each intent (and `intents show --json` under `intent`)."""
    verdict = verdict_of(intent.status)
    return {
        "id": intent.id,
        "workflow": intent.workflow,
        "environment": intent.environment,
        "status": intent.status.value,
        "verdict": verdict.value if verdict else None,
        "final": intent.status.terminal,
        "needs_human": intent.status.needs_human,
        "status_reason": redact_text(intent.status_reason) if intent.status_reason else None,
        "requester": intent.requester,
        "plan_hash": intent.plan_hash,
        "ticket": {"id": intent.plan["ticket"], "url": intent.plan.get("ticket_url")}
        if intent.plan.get("ticket")
        else None,
        "version": intent.version,
        "attempts": intent.attempts,
        "created_at": _when(intent.created_at),
        "updated_at": _when(intent.updated_at),
        "started_at": _when(intent.started_at),
        "next_check_at": _when(intent.next_check_at),
        "not_before": _when(intent.not_before),
    }


def list_json(intents: list[Intent]) -> dict[str, Any]:
    """`opsbot intents list --json`."""
    return {"format": JSON_FORMAT, "intents": [intent_json(i) for i in intents]}


def view_json(view: IntentView) -> dict[str, Any]:
    """`opsbot intents show ID --json`: the intent, its approvals, steps, events, waits and the four answers."""
    intent, g = view.intent, view.guidance
    approvers = sorted({a.actor for a in view.approvals if a.decision is Decision.APPROVE})
    return {
        "format": JSON_FORMAT,
        "intent": {
            **intent_json(intent),
            "mode": intent.mode.value,
            "params": redact(intent.params),
            "plan": redact(intent.plan),
            "last_error": redact_text(intent.last_error) if intent.last_error else None,
            "lease_owner": intent.lease_owner,
            "lease_expires_at": _when(intent.lease_expires_at),
        },
        "approvals": {
            "needed": view.approvals_needed,
            "approved_by": approvers,
            "decisions": [
                {
                    "actor": a.actor,
                    "decision": a.decision.value,
                    "plan_hash": a.plan_hash,
                    "at": _when(a.created_at),
                    "expires_at": _when(a.expires_at),
                    "reason": redact_text(a.reason) if a.reason else None,
                }
                for a in view.approvals
            ],
        },
        "steps": [
            {
                "seq": s.seq,
                "name": s.name,
                "status": s.status.value,
                "attempts": s.attempts,
                "started_at": _when(s.started_at),
                "finished_at": _when(s.finished_at),
                "external_ids": redact(s.external_ids),
                "error": redact_text(s.error) if s.error else None,
            }
            for s in view.steps
        ],
        "events": [
            {
                "seq": e.seq,
                "at": _when(e.created_at),
                "actor": e.actor,
                "via": e.data.get("via"),
                "kind": e.kind,
                "data": redact({k: v for k, v in e.data.items() if k != "via"}),
            }
            for e in view.events
        ],
        "waiting_for": [
            {
                "resource": h.resource,
                "intent_id": h.intent_id,
                "workflow": h.workflow,
                "requester": h.requester,
                "status": h.status.value,
            }
            for h in view.holders
        ],
        "answers": {
            "requested": redact_text(g.requested),
            "changed": [redact_text(line) for line in g.changed],
            "uncertain": [redact_text(line) for line in g.uncertain],
            "actions": [{"action": a.value, "why": redact_text(why)} for a, why in g.actions],
        },
    }
