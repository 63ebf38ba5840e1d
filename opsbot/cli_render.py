"""Pure renderers for the terminal: frozen domain objects in, rich renderables out."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from workflows.model import Intent, IntentStatus
from workflows.redaction import redact
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
    return Group(
        header, render_plan(view.intent), Panel(answers, title="the four answers", expand=False), steps, events
    )
