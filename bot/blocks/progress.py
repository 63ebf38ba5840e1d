"""The checklist inside an intent's plan message: each step done, in progress (with its latest observation and how
long it has run) or still to do. It is edited in place as the intent moves, so progress never posts anything."""

from __future__ import annotations

from bot.blocks.kit import SECTION_TEXT
from bot.blocks.text import clipped, code, duration, elapsed, pairs, slack_ago, truncate_mrkdwn
from workflows.model import StepRecord, StepStatus
from workflows.service import IntentView
from workflows.steps import COMPENSATION_SEQ_BASE

_LINE = 400  # one step's line
_MARKS = {
    StepStatus.SUCCEEDED: ":white_check_mark:",
    StepStatus.STARTED: ":arrow_forward:",
    StepStatus.PENDING: ":hourglass_flowing_sand:",
    StepStatus.FAILED: ":x:",
    StepStatus.UNKNOWN: ":grey_question:",
}


def _line(step: tuple[str, str], record: StepRecord | None, view: IntentView) -> str:
    name = f"{clipped(step[1], 160)} {code(step[0], 120)}" if step[1] else code(step[0], 120)
    if record is None:
        return f":white_circle: {name}"
    mark = _MARKS.get(record.status, ":grey_question:")
    again = f", attempt {record.attempts}" if record.attempts > 1 else ""
    if record.status is StepStatus.SUCCEEDED:
        took = duration(elapsed(record.started_at, record.finished_at)) if record.finished_at else "?"
        return f"{mark} {name} — done in {took}{again}"
    if record.status is StepStatus.STARTED:
        return f"{mark} {name} — running, started {slack_ago(record.started_at)}{again}"
    if record.status is StepStatus.PENDING:
        observed = record.output.get("observed")
        seen = f"; last seen: {pairs(observed, 200)}" if observed else ""
        return f"{mark} {name} — waiting for it to converge, started {slack_ago(record.started_at)}{seen}"
    if record.status is StepStatus.FAILED:
        return f"{mark} {name} — *failed*{again}: {clipped(record.error or 'no error recorded', 200)}"
    return f"{mark} {name} — *outcome unknown*: opsbot looks before doing anything else"


def checklist(view: IntentView) -> str:
    """`*Progress*` and one line per planned step, then any compensation steps that ran."""
    records = {r.seq: r for r in view.steps}
    forward_records = sorted((r for r in view.steps if r.seq < COMPENSATION_SEQ_BASE), key=lambda r: r.seq)
    planned = list(view.steps_planned or ((r.name, "") for r in forward_records))
    # Records past the planned steps (the postcondition check) and compensations that ran come after them.
    extra = sorted((r for r in view.steps if r.seq > len(planned)), key=lambda r: r.seq)
    lines = [_line(step, records.get(seq), view) for seq, step in enumerate(planned, start=1)]
    lines += [_line((r.name, "undo" if r.seq >= COMPENSATION_SEQ_BASE else ""), r, view) for r in extra]
    forward = [r for r in view.steps if r.seq <= len(planned)]
    done = sum(1 for r in forward if r.status is StepStatus.SUCCEEDED)
    head = f"*Progress* · {done} of {len(planned)} steps done"
    text = "\n".join([head, *(truncate_mrkdwn(line, _LINE) for line in lines)])
    return truncate_mrkdwn(text, SECTION_TEXT)
