"""How many Slack posts (not edits) one operation makes, over real HTTP: a living status message, not a step log.

A 3-step and a 7-step operation, each with a step that converges over several checks, run to success and to a
failure. Whatever the number of steps, the operation makes at most three posts: its plan message, a post when a
human must act, and the final verdict; every step, check and approval is an edit of the plan message.
"""

from __future__ import annotations

import time
import types
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from bot.ids import ActionId
from fakeslack import Message
from fakeslack.models import Call
from tests.conftest import create_source
from tests.slack_harness import APPROVER, INCIDENT, OPS, REQUESTER, Bench, served
from tests.test_slack_e2e import button_ids, click, plan
from workflows.catalog import build_registry
from workflows.errors import PermanentError
from workflows.model import IntentStatus
from workflows.sdk import (
    Done,
    Evidence,
    Mutation,
    Pending,
    PlanDraft,
    PreflightContext,
    Risk,
    Rollback,
    StepContext,
    StepOutcome,
    Workflow,
    postcondition,
    step,
    workflow,
)

CHECKS = 3  # how many times the converging step answers "not yet" before it is done


class StepsParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,40}$", description="the thing to build")
    fail_at: int = Field(default=0, ge=0, le=9, description="the step that fails for good; 0 for none")


_polls: dict[str, int] = {}


def _done(ctx: StepContext[StepsParams], seq: int) -> StepOutcome:
    if ctx.params.fail_at == seq:
        raise PermanentError(f"step {seq} refused: quota exceeded", guidance="raise the quota, then retry")
    return Done(external_ids={f"part_{seq}": f"{ctx.params.name}-{seq}"})


def _converge(ctx: StepContext[StepsParams], seq: int) -> StepOutcome:
    key = f"{ctx.intent.id}:{seq}"
    _polls[key] = _polls.get(key, 0) + 1
    if _polls[key] <= CHECKS:
        return Pending(f"{ctx.params.name} is still building", observed={"state": "building"}, retry_after=0.01)
    return _done(ctx, seq)


def _plan(ctx: PreflightContext[StepsParams], steps: int) -> PlanDraft:
    name = ctx.params.name
    return PlanDraft(
        targets=(f"thing:{name}",),
        mutations=(Mutation(action="create", target=f"thing:{name}", detail=f"in {steps} steps"),),
        observed={"thing": None},
        locks=(f"thing:{name}",),
        blast_radius="one test thing",
    )


_NAMES = ("one", "two", "three", "four", "five", "six", "seven")


def steps_workflow(steps: int, converging: int) -> type[Workflow[StepsParams]]:
    """`test.<n>-steps`: steps named one, two, … ("step one", …), each done at once, except `converging`, which
    answers "not yet" CHECKS times first (a convergence window, checked by the reconciler)."""

    def preflight(self: Workflow[StepsParams], ctx: PreflightContext[StepsParams]) -> PlanDraft:
        return _plan(ctx, steps)

    def run(seq: int) -> Any:
        def call(self: Workflow[StepsParams], ctx: StepContext[StepsParams]) -> StepOutcome:
            return _converge(ctx, seq) if seq == converging else _done(ctx, seq)

        call.__name__ = _NAMES[seq - 1]
        window = 600.0 if seq == converging else None
        return step(
            rollback=Rollback.NONE,
            idempotent="a test step",
            convergence_window=window,
            description=f"step {_NAMES[seq - 1]}",
        )(call)

    def built(self: Workflow[StepsParams], ctx: StepContext[StepsParams]) -> Evidence:
        return Evidence(True)

    namespace: dict[str, Any] = {"preflight": preflight}
    namespace.update({_NAMES[seq - 1]: run(seq) for seq in range(1, steps + 1)})
    namespace["built"] = postcondition("it is built")(built)
    cls = types.new_class(f"Steps{steps}", (Workflow[StepsParams],), exec_body=lambda body: body.update(namespace))
    return workflow(
        name=f"test.{_NAMES[steps - 1]}-steps",
        summary=f"Build a thing in {steps} steps",
        risk=Risk.LOW,
        blast_radius="one",
        request_roles=("dba",),
        approve_roles=("dba-lead",),
    )(cls)


ThreeSteps, SevenSteps = steps_workflow(3, converging=2), steps_workflow(7, converging=3)


@dataclass(frozen=True)
class Run:
    posts: list[Call]  # chat.postMessage calls to the ops channel that Slack accepted, in order
    edits: int  # chat.update calls
    parent: Message
    replies: list[Message]
    queued: int  # posting messages queued (plan and thread posts): each a post when they are not due together


@pytest.fixture
def bench(tmp_path: Path, sqlite_url: str, aws: str) -> Iterator[Bench]:
    create_source(aws)
    registry = build_registry()
    registry.add(ThreeSteps)
    registry.add(SevenSteps)
    policies = {
        name: {"request": ["dba"], "approve": ["dba-lead"], "approvals": 1}
        for name in ("rds.create-replica", "test.three-steps", "test.seven-steps")
    }
    with served(tmp_path, sqlite_url, aws, registry=registry, config_overrides={"policies": policies}) as b:
        yield b


def _drive(b: Bench, intent_id: str) -> None:
    """Run executor, reconciler (each convergence check), projector and outbox until the intent stops moving."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        b.settle()
        status = b.status(intent_id)
        if status.terminal or status.needs_human:
            b.settle()
            return
        b.services.reconciler.reconcile_due(b.services.runtime.clock.now() + timedelta(seconds=1))
    raise AssertionError(f"{intent_id} did not finish: {b.status(intent_id)}")


def operate(b: Bench, workflow: str, fail_at: int = 0) -> tuple[str, Run]:
    intent_id = plan(b, f"{workflow} name=widget fail_at={fail_at} env=prod")
    click(b, intent_id, ActionId.APPROVE, APPROVER)
    _drive(b, intent_id)
    return intent_id, observed(b, intent_id)


def observed(b: Bench, intent_id: str) -> Run:
    posts = [c for c in b.fake.calls_to("chat.postMessage") if c.ok and c.args.get("channel") == OPS]
    edits = len([c for c in b.fake.calls_to("chat.update") if c.ok])
    assert b.services.slack is not None
    queued = [i for i in b.services.slack.store.sent() if i.kind in ("post_parent", "thread_reply")]
    return Run(posts, edits, b.parent(intent_id), b.replies(intent_id), len(queued))


def _report(name: str, run: Run) -> None:
    """The figures the issue's closing note quotes: posts over HTTP, and queued messages that would each be a post
    when they are not due together (a real RDS converges over minutes, so nothing batches)."""
    print(f"{name}: {len(run.posts)} posts, {run.queued} posting messages queued, {run.edits} edits")


@pytest.mark.parametrize(("workflow", "steps"), [("test.three-steps", 3), ("test.seven-steps", 7)])
def test_a_successful_operation_makes_at_most_three_posts(bench: Bench, workflow: str, steps: int) -> None:
    intent_id, run = operate(bench, workflow)
    _report(f"{workflow} succeeded", run)
    assert bench.status(intent_id) is IntentStatus.SUCCEEDED
    assert len(run.posts) <= 3, f"{len(run.posts)} posts for a {steps}-step operation"
    assert run.queued <= 3, "nothing else waits to be posted: spaced out in time, it would still be three at most"
    assert run.edits >= 2, "the plan message follows the operation by edits"
    assert not bench.fake.messages(INCIDENT), "a low-risk change is not announced where incident_risks does not name it"


@pytest.mark.parametrize(("workflow", "steps"), [("test.three-steps", 3), ("test.seven-steps", 7)])
def test_a_failed_operation_makes_at_most_three_posts(bench: Bench, workflow: str, steps: int) -> None:
    intent_id, run = operate(bench, workflow, fail_at=steps)  # the last step fails, after the others ran
    _report(f"{workflow} failed", run)
    assert bench.status(intent_id) is IntentStatus.FAILED
    assert len(run.posts) <= 3, f"{len(run.posts)} posts for a {steps}-step operation"
    assert run.queued <= 3, "nothing else waits to be posted"


def test_a_failure_retried_failing_again_then_cancelled_stays_at_three_posts(bench: Bench) -> None:
    """Plan, the failure (for the requester and approver, broadcast, with what to do first), the failure again after
    Retry; then Cancel edits that latest post instead of a fourth. The earlier post loses its buttons."""
    intent_id, run = operate(bench, "test.seven-steps", fail_at=4)
    [failure] = run.replies
    assert failure.reply_broadcast and ActionId.RETRY.value in button_ids(failure.blocks)
    said = str(failure.blocks)
    assert f"<@{REQUESTER}>" in said and f"<@{APPROVER}>" in said, "the people who must act are named"
    assert said.index("What you can do now") < said.index("What is uncertain") < said.index("What changed")
    assert said.index("raise the quota, then retry") < said.index("What is uncertain"), "the adapter's advice leads"
    assert "*" not in failure.text and "billing" not in failure.text and "thing:widget" in failure.text
    checklist = str(run.parent.blocks)
    assert ":x: step four `four` — *failed*" in checklist and ":white_check_mark: step one `one`" in checklist
    assert ":white_circle: step five `five`" in checklist, "what is still to do is listed"

    ack = bench.driver.click(OPS, failure.ts, ActionId.RETRY.value, user=REQUESTER)
    assert ack.status == 200
    _drive(bench, intent_id)
    # The step fails again (the workflow always fails step 4): a second stop needs people again.
    after = observed(bench, intent_id)
    _report("test.seven-steps failed, retried, failed again", after)
    first, second = after.replies
    assert not button_ids(first.blocks) and "Superseded" in str(first.blocks), "the earlier post lost its buttons"
    assert ActionId.RETRY.value in button_ids(second.blocks)
    assert len(after.posts) == 3

    # Cancelled now: the operation has made its three posts, so the latest one says it (an edit, no fourth post).
    cancel = bench.driver.click(OPS, second.ts, ActionId.CANCEL.value, user=REQUESTER)
    assert cancel.status == 200
    bench.settle()
    assert bench.status(intent_id) is IntentStatus.CANCELLED
    final = observed(bench, intent_id)
    assert len(final.posts) == 3 and len(final.replies) == 2
    assert "Cancelled" in str(final.replies[-1].blocks) and not button_ids(final.replies[-1].blocks)
    assert "Done before it stopped, and left as it is" in str(final.replies[-1].blocks), "what the steps left"


def test_a_denial_is_one_line_posted_once(bench: Bench) -> None:
    """Denied: the plan message shrinks to who denied and why; one post says it in one line."""
    intent_id = plan(bench, "test.three-steps name=widget env=prod")
    bench.services.ops.deny(intent_id, APPROVER, "not during the freeze")
    bench.settle()
    run = observed(bench, intent_id)
    [verdict] = run.replies
    section_texts = [b for b in verdict.blocks if b.get("type") == "section"]
    assert len(section_texts) == 1 and "not during the freeze" in str(section_texts)
    assert "not during the freeze" in str(run.parent.blocks) and len(run.posts) == 2
