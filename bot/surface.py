"""What Slack listeners call: one function per user action, on the same services and policy as the CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.blocks.full_plan import render_plan_modal
from bot.blocks.home import render_home
from bot.blocks.modals import render_reason_modal, render_request_modal
from bot.blocks.status import render_status
from bot.commands import parse_request
from bot.ids import COMMAND, ActionId, ButtonValue, CallbackId, ModalMeta
from bot.projector import Projector, parent_payload
from store.slack import OutboxKind, SlackStore, parent_key
from workflows.authorization import rule
from workflows.errors import InvalidInput, InvalidTransition, PermissionDenied
from workflows.model import Intent, IntentStatus
from workflows.planning import parse_params
from workflows.scheduling import check_start, take_start
from workflows.service import OpsService
from workflows.states import Action
from workflows.tickets import check_ticket, take_ticket

RECOVERY: dict[ActionId, Action] = {
    ActionId.RETRY: Action.RETRY,
    ActionId.RESUME: Action.RESUME,
    ActionId.CANCEL: Action.CANCEL,
    ActionId.MARK_DONE: Action.MARK_DONE,
    ActionId.COMPENSATE: Action.COMPENSATE,
    ActionId.RUN_NOW: Action.RUN_NOW,
    ActionId.REQUEST_AGAIN: Action.REQUEST,
}


@dataclass(frozen=True, slots=True)
class Reply:
    """An ephemeral answer to the user."""

    text: str
    blocks: list[dict[str, Any]] | None = None


class CommandKind(StrEnum):
    HELP = "help"
    LIST = "list"
    STATUS = "status"
    MODAL = "modal"
    REQUEST = "request"


@dataclass(frozen=True, slots=True)
class Command:
    """A parsed `/ops` invocation, checked before the ack so syntax errors answer at once."""

    kind: CommandKind
    workflow: str | None = None
    params: dict[str, str] | None = None
    environment: str | None = None
    intent_id: str | None = None


class SlackSurface:
    def __init__(self, ops: OpsService, slack: SlackStore, projector: Projector, wake: Callable[[], None]) -> None:
        self.ops, self.slack, self.projector, self.wake = ops, slack, projector, wake
        self.rt = ops.rt

    # parsing (pure, before the ack) --------------------------------------------------------------
    def parse(self, text: str) -> Command:
        words = text.strip().split(maxsplit=1)
        head = words[0] if words else "help"
        rest = words[1] if len(words) > 1 else ""
        if head == "help":
            return Command(CommandKind.HELP)
        if head == "list":
            return Command(CommandKind.LIST)
        if head == "status":
            if not rest.strip() or len(rest.split()) != 1:
                raise InvalidInput(f"usage: {COMMAND} status <intent id>")
            return Command(CommandKind.STATUS, intent_id=rest.strip())
        spec = self.rt.registry.get(head)
        if not rest.strip():
            return Command(CommandKind.MODAL, workflow=spec.name)
        parsed = parse_request(text)
        return self.validate(spec.name, parsed.params, parsed.environment)

    def validate(self, workflow: str, params: dict[str, str], environment: str | None) -> Command:
        """Check a request without side effects: environment known, every field valid."""
        spec = self.rt.registry.get(workflow)
        environments = sorted(self.rt.config.environments)
        env = environment or (environments[0] if len(environments) == 1 else None)
        if env is None:
            raise InvalidInput(f"say which environment: env=<{'|'.join(environments)}>")
        self.rt.config.environment(env)
        fields, ticket = take_ticket(params)
        check_ticket(self.rt.config, spec.name, env, ticket)  # a missing or malformed ticket is refused in the ack
        fields, at = take_start(fields)
        check_start(self.rt.config, spec.name, env, at, self.rt.clock.now())  # a past or out-of-window start too
        parse_params(spec, fields)  # every bad field named now, before anything slow
        return Command(CommandKind.REQUEST, workflow=spec.name, params=params, environment=env)

    def help_text(self) -> str:
        return (
            f"*opsbot* — `{COMMAND} list` shows workflows; `{COMMAND} <workflow> key=value … env=<env>` plans one; "
            f"`{COMMAND} <workflow>` opens a form; `{COMMAND} status <id>` shows an intent. "
            "A different approver must approve each plan."
        )

    def list_text(self) -> str:
        lines = []
        for spec in self.rt.registry:
            fields = []
            for name, field in spec.params.model_fields.items():
                optional = "" if field.is_required() else f" (default {field.default})"
                fields.append(f"`{name}`{optional}")
            approvers = []
            for env in sorted(self.rt.config.environments):
                r = rule(self.rt.config, spec, env, Action.APPROVE)
                approvers.append(f"{env}: {r.people} from {', '.join(sorted(r.roles)) or 'nobody'}")
            lines.append(
                f"*{spec.name}* — {spec.summary}\n    inputs: {', '.join(fields)}; risk {spec.risk.value}; "
                f"approvers {'; '.join(approvers)}"
            )
        return "\n".join(lines) or "no workflows are registered"

    # intake --------------------------------------------------------------------------------------
    def request(self, command: Command, user: str, channel: str) -> Reply:
        assert command.workflow and command.params is not None and command.environment
        result = self.ops.request(command.workflow, command.params, command.environment, user)
        intent = result.intent
        if not result.created and self.slack.thread(intent.id) is None:
            self._open_thread(intent, channel)  # planned before, but its plan message was never queued
            return Reply(f":memo: Planned `{intent.id}`: the plan is posted here for an approver.")
        if not result.created:
            return Reply(
                f":repeat: This request already exists as intent `{intent.id}` ({intent.status.value}); see its thread."
            )
        self._open_thread(intent, channel)
        return Reply(f":memo: Planned `{intent.id}`: the plan is posted here for an approver.")

    def request_from_modal(self, command: Command, meta: ModalMeta, user: str) -> Reply:
        return self.request(command, user, meta.channel)

    def _open_thread(self, intent: Intent, channel: str) -> None:
        view = self.ops.show(intent.id)
        now = self.rt.clock.now()
        items: list[tuple[str, str | None, str, str, dict[str, Any]]] = [
            (parent_key(intent.id), intent.id, channel, OutboxKind.POST_PARENT, parent_payload(view, self.rt.registry))
        ]
        self.slack.enqueue(items, now, thread=(intent.id, channel))
        self.projector.mark(intent.id)  # its incident notice, if its risk calls for one, once the plan is posted
        self.wake()

    def request_modal(self, workflow: str, channel: str) -> dict[str, Any]:
        spec = self.rt.registry.get(workflow)
        meta = ModalMeta(action="request", channel=channel, workflow=spec.name)
        environments = sorted(self.rt.config.environments)
        rules = {env: r for env in environments if (r := self.rt.config.ticket_rule(spec.name, env)) is not None}
        tickets = "; ".join(f"{env}: {r.pattern}{'' if r.required else ' (optional)'}" for env, r in rules.items())
        return render_request_modal(spec, environments, meta, tickets or None)

    # clicks --------------------------------------------------------------------------------------
    def approve(self, value: ButtonValue, user: str) -> Reply:
        intent = self.ops.approve(value.intent_id, user, value.plan_hash)
        self._refresh(intent.id)
        if intent.status is IntentStatus.APPROVED:
            return Reply(f":white_check_mark: Approved `{intent.id}`; it will run shortly.")
        if intent.status is IntentStatus.SCHEDULED:
            return Reply(f":calendar: Approved `{intent.id}`; scheduled: {intent.status_reason or ''}")
        needed = self.ops.show(intent.id).approvals_needed
        return Reply(
            f":white_check_mark: Your approval of `{intent.id}` is recorded; {needed} distinct approvers are needed."
        )

    def reason_modal(self, action: ActionId, value: ButtonValue, channel: str, user: str) -> dict[str, Any]:
        """Deny and Mark done ask for a reason first (required for both), of those who may."""
        intent = self._current(value, check_version=action is not ActionId.DENY)
        wanted = Action.DENY if action is ActionId.DENY else Action.MARK_DONE
        if not self.ops.may(intent, wanted, user):
            raise PermissionDenied(
                f"you may not {wanted.value} `{intent.id}` ({intent.workflow} in {intent.environment})"
            )
        meta = ModalMeta(
            action=action.value,
            channel=channel,
            intent_id=value.intent_id,
            plan_hash=value.plan_hash,
            version=value.version,
        )
        if action is ActionId.DENY:
            return render_reason_modal(
                "Deny this plan",
                meta,
                required=True,
                callback_id=CallbackId.DENY_MODAL,
                submit="Deny",
                hint="Required. Say why, so the requester knows what to change; the thread and the audit log keep it.",
            )
        return render_reason_modal(
            "Mark done by hand", meta, required=True, callback_id=CallbackId.REASON_MODAL, submit="Mark done"
        )

    def submit_reason(self, meta: ModalMeta, reason: str, user: str) -> Reply:
        value = meta.button()
        if meta.action == ActionId.DENY.value:
            intent = self.ops.deny(value.intent_id, user, reason, plan_hash=value.plan_hash)
            self._refresh(intent.id)
            return Reply(f":no_entry_sign: Denied `{intent.id}`.")
        return self.recover(ActionId.MARK_DONE, value, user, reason)

    def recover(self, action: ActionId, value: ButtonValue, user: str, reason: str = "") -> Reply:
        intent = self._current(value, check_version=True)
        if RECOVERY[action] is Action.REQUEST:
            return self._request_again(intent, user)
        why = reason or f"{action.value.removeprefix('ops_').replace('_', ' ')} clicked in Slack"
        method = {
            Action.RETRY: self.ops.retry,
            Action.RESUME: self.ops.resume,
            Action.CANCEL: self.ops.cancel,
            Action.MARK_DONE: self.ops.mark_done,
            Action.COMPENSATE: self.ops.compensate,
            Action.RUN_NOW: self.ops.run_now,
        }[RECOVERY[action]]
        moved = method(intent.id, user, why)
        self._refresh(moved.id)
        if moved.version == intent.version:
            return Reply(
                f":ballot_box_with_check: Your agreement to {RECOVERY[action].value} `{moved.id}` is recorded; "
                "the policy needs more people to agree before it happens."
            )
        return Reply(f":arrows_counterclockwise: `{moved.id}` is now {moved.status.value}: {moved.status_reason or ''}")

    def _request_again(self, expired: Intent, user: str) -> Reply:
        """An expired request, again, by its requester: a new intent whose plan is posted where the old one was."""
        again = self.ops.request_again(expired.id, user, "Request again clicked in Slack")
        thread = self.slack.thread(expired.id)
        if thread is None:
            raise InvalidInput(f"`{expired.id}` has no message in Slack to post the new plan beside; use /ops")
        self._open_thread(again, thread.channel)
        self._refresh(expired.id)
        return Reply(f":memo: Requested again as `{again.id}`: the new plan is posted here for an approver.")

    def _current(self, value: ButtonValue, check_version: bool) -> Intent:
        intent = self.ops.get(value.intent_id)
        if check_version and intent.version != value.version:
            raise InvalidTransition(
                f"that message is out of date: `{intent.id}` is now {intent.status.value}; "
                "use the latest message in its thread"
            )
        return intent

    def _refresh(self, intent_id: str) -> None:
        self.projector.sync_one(intent_id)
        self.wake()

    # reading -------------------------------------------------------------------------------------
    def status(self, intent_id: str, user: str) -> Reply:
        """The four answers, for someone who may see this intent; every stored text escaped."""
        view = self.ops.show(intent_id, viewer=user)
        yours = tuple(a for a in view.guidance.action_names if self.ops.may(view.intent, a, user))
        return Reply(render_status(view, yours))

    def home(self, user: str) -> dict[str, Any]:
        pending, intents = [], self.ops.list(limit=200)
        for intent in intents:
            if (
                intent.status not in (IntentStatus.PENDING_APPROVAL, IntentStatus.NEEDS_REAPPROVAL)
                or intent.requester == user
            ):
                continue
            if self.ops.may(intent, Action.APPROVE, user):
                pending.append(intent)
        recent = [i for i in intents if i.requester == user][:10]
        return render_home(user, pending, recent, self.rt.clock.now())

    # the whole plan, and approving what was read ---------------------------------------------------
    def plan_modal(self, value: ButtonValue, channel: str, user: str, *, approve: bool) -> dict[str, Any]:
        """The intent's whole plan as it stands now, for someone who may see it; with `approve`, a modal whose
        submit approves that plan (who may approve is checked on submit, against whoever submits)."""
        view = self.ops.show(value.intent_id, viewer=user)
        spec = self.rt.registry.get(view.intent.workflow)
        return render_plan_modal(view, spec.summary, spec.risk, approve=approve, channel=channel)

    def approve_reviewed(self, meta: ModalMeta, user: str) -> Reply:
        """The plan modal's Approve: the plan hash it showed, through the same service call as the Approve button.

        The service refuses a changed plan (and audits it); an intent that moved on since with the same plan
        (approved, denied, expired) is refused here: the approver read a state that is gone.
        """
        if meta.action != "approve":
            raise InvalidInput("this form is not one opsbot recognises (was it edited?)")
        value = meta.button()
        intent = self.ops.get(value.intent_id)
        if intent.version != value.version and intent.plan_hash == value.plan_hash:
            raise InvalidTransition(
                f"`{intent.id}` moved on while you were reading its plan: it is now {intent.status.value}. "
                "Nothing was approved; open it again to see where it stands"
            )
        return self.approve(value, user)

    def missing_reason(self, meta: ModalMeta, reason: str) -> str | None:
        """What the reason field says when Deny or Mark done was submitted without one (blank is none); else None."""
        if reason.strip():
            return None
        if meta.action == ActionId.DENY.value:
            return "Say why you deny it: the requester reads this in the thread"
        if meta.action == ActionId.MARK_DONE.value:
            return "Say what you verified by hand"
        return None
