"""How many Slack posts (not edits) one operation makes, over real HTTP: a living status message, not a step log.

A 3-step and a 7-step operation, each with a step that converges over several checks, run to success and to a
failure. Whatever the number of steps, the operation makes at most three posts: its plan message, a post when a
human must act, and the final verdict; every step, check and approval is an edit of the plan message.
"""

from __future__ import annotations

import time
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
from tests.slack_harness import APPROVER, OPS, REQUESTER, Bench, served
from tests.test_slack_e2e import click, plan
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


_ROLES: dict[str, Any] = {"request_roles": ("dba",), "approve_roles": ("dba-lead",)}


@workflow(name="test.three-steps", summary="Build a thing in 3 steps", risk=Risk.LOW, blast_radius="one", **_ROLES)
class ThreeSteps(Workflow[StepsParams]):
    def preflight(self, ctx: PreflightContext[StepsParams]) -> PlanDraft:
        return _plan(ctx, 3)

    @step(rollback=Rollback.NONE, idempotent="a test step", description="lay the ground")
    def one(self, ctx: StepContext[StepsParams]) -> StepOutcome:
        return _done(ctx, 1)

    @step(rollback=Rollback.NONE, idempotent="a test step", convergence_window=600.0, description="wait for it")
    def two(self, ctx: StepContext[StepsParams]) -> StepOutcome:
        return _converge(ctx, 2)

    @step(rollback=Rollback.NONE, idempotent="a test step", description="finish")
    def three(self, ctx: StepContext[StepsParams]) -> StepOutcome:
        return _done(ctx, 3)

    @postcondition("it is built")
    def built(self, ctx: StepContext[StepsParams]) -> Evidence:
        return Evidence(True)


@workflow(name="test.seven-steps", summary="Build a thing in 7 steps", risk=Risk.LOW, blast_radius="one", **_ROLES)
class SevenSteps(Workflow[StepsParams]):
    def preflight(self, ctx: PreflightContext[StepsParams]) -> PlanDraft:
        return _plan(ctx, 7)

    @step(rollback=Rollback.NONE, idempotent="a test step", description="step one")
    def one(self, ctx: StepContext[StepsParams]) -> StepOutcome:
        return _done(ctx, 1)

    @step(rollback=Rollback.NONE, idempotent="a test step", description="step two")
    def two(self, ctx: StepContext[StepsParams]) -> StepOutcome:
        return _done(ctx, 2)

    @step(rollback=Rollback.NONE, idempotent="a test step", convergence_window=600.0, description="wait for it")
    def three(self, ctx: StepContext[StepsParams]) -> StepOutcome:
        return _converge(ctx, 3)

    @step(rollback=Rollback.NONE, idempotent="a test step", description="step four")
    def four(self, ctx: StepContext[StepsParams]) -> StepOutcome:
        return _done(ctx, 4)

    @step(rollback=Rollback.NONE, idempotent="a test step", description="step five")
    def five(self, ctx: StepContext[StepsParams]) -> StepOutcome:
        return _done(ctx, 5)

    @step(rollback=Rollback.NONE, idempotent="a test step", description="step six")
    def six(self, ctx: StepContext[StepsParams]) -> StepOutcome:
        return _done(ctx, 6)

    @step(rollback=Rollback.NONE, idempotent="a test step", description="step seven")
    def seven(self, ctx: StepContext[StepsParams]) -> StepOutcome:
        return _done(ctx, 7)

    @postcondition("it is built")
    def built(self, ctx: StepContext[StepsParams]) -> Evidence:
        return Evidence(True)


@dataclass(frozen=True)
class Run:
    posts: list[Call]  # chat.postMessage calls to the ops channel that Slack accepted, in order
    edits: int  # chat.update calls
    parent: Message
    replies: list[Message]


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
    return Run(posts, edits, b.parent(intent_id), b.replies(intent_id))


def _report(b: Bench, name: str, run: Run) -> None:
    """The figures the issue's closing note quotes: posts over HTTP, and queued messages that would each be a post
    when they are not due together (a real RDS converges over minutes, so nothing batches)."""
    assert b.services.slack is not None
    queued = [i for i in b.services.slack.store.sent() if i.kind in ("post_parent", "thread_reply")]
    print(f"{name}: {len(run.posts)} posts, {len(queued)} posting messages queued, {run.edits} edits")


@pytest.mark.parametrize(("workflow", "steps"), [("test.three-steps", 3), ("test.seven-steps", 7)])
def test_a_successful_operation_makes_at_most_three_posts(bench: Bench, workflow: str, steps: int) -> None:
    intent_id, run = operate(bench, workflow)
    _report(bench, f"{workflow} succeeded", run)
    assert bench.status(intent_id) is IntentStatus.SUCCEEDED
    assert len(run.posts) <= 3, f"{len(run.posts)} posts for a {steps}-step operation"
    assert run.edits >= 2, "the plan message follows the operation by edits"


@pytest.mark.parametrize(("workflow", "steps"), [("test.three-steps", 3), ("test.seven-steps", 7)])
def test_a_failed_operation_makes_at_most_three_posts(bench: Bench, workflow: str, steps: int) -> None:
    intent_id, run = operate(bench, workflow, fail_at=steps)  # the last step fails, after the others ran
    _report(bench, f"{workflow} failed", run)
    assert bench.status(intent_id) is IntentStatus.FAILED
    assert len(run.posts) <= 3, f"{len(run.posts)} posts for a {steps}-step operation"


def _buttons(message: Message) -> list[str]:
    return [e.get("action_id", "") for b in message.blocks if b.get("type") == "actions" for e in b["elements"]]


def test_a_failure_retried_to_success_makes_three_posts_and_the_first_loses_its_buttons(bench: Bench) -> None:
    """Plan, the failure (for the requester and approver, broadcast, with what to do first), the final verdict."""
    intent_id, run = operate(bench, "test.seven-steps", fail_at=4)
    [failure] = run.replies
    assert failure.reply_broadcast and ActionId.RETRY.value in _buttons(failure)
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
    _report(bench, "test.seven-steps failed, retried, failed again", after)
    first, second = after.replies
    assert not _buttons(first) and "Superseded" in str(first.blocks), "the earlier post lost its buttons"
    assert ActionId.RETRY.value in _buttons(second)
    assert len(after.posts) == 3

    # Cancelled now: the operation has made its three posts, so the latest one says it (an edit, no fourth post).
    cancel = bench.driver.click(OPS, second.ts, ActionId.CANCEL.value, user=REQUESTER)
    assert cancel.status == 200
    bench.settle()
    assert bench.status(intent_id) is IntentStatus.CANCELLED
    final = observed(bench, intent_id)
    assert len(final.posts) == 3 and len(final.replies) == 2
    assert "Cancelled" in str(final.replies[-1].blocks) and not _buttons(final.replies[-1])
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
