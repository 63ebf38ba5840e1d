"""The Slack protocol vocabulary: action and callback ids, and the small models carried in buttons and modals."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workflows.errors import InvalidInput

COMMAND = "/ops"


class ActionId(StrEnum):
    APPROVE = "ops_approve"
    DENY = "ops_deny"
    RETRY = "ops_retry"
    RESUME = "ops_resume"
    CANCEL = "ops_cancel"
    MARK_DONE = "ops_mark_done"
    COMPENSATE = "ops_compensate"
    RUN_NOW = "ops_run_now"
    REQUEST_AGAIN = "ops_request_again"
    VIEW_PLAN = "ops_view_plan"
    REVIEW = "ops_review"  # the App Home's "Review and approve": the plan modal, whose submit approves


class CallbackId(StrEnum):
    REQUEST_MODAL = "ops_request_modal"
    DENY_MODAL = "ops_deny_modal"
    REASON_MODAL = "ops_reason_modal"
    PLAN_MODAL = "ops_plan_modal"  # the full plan, to read (no submit)
    APPROVE_MODAL = "ops_approve_modal"  # the full plan, approved by its submit


class BlockId(StrEnum):
    REASON = "reason"
    ENVIRONMENT = "env"


REASON_ACTION = "reason_input"
FIELD_ACTION = "value"


class _Compact(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def encode(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)

    @classmethod
    def decode(cls, raw: str | None) -> _Compact:
        try:
            return cls.model_validate_json(raw or "")
        except ValidationError:
            raise InvalidInput("this button or form is not one opsbot recognises (was it edited?)") from None


class ButtonValue(_Compact):
    """What every opsbot button carries: the intent, the plan hash it was shown, and the intent version."""

    intent_id: str = Field(alias="i", max_length=40)
    plan_hash: str = Field(alias="h", pattern=r"^[0-9a-f]{64}$")  # the whole hash: a prefix approves nothing
    version: int = Field(alias="v", ge=1)


class ModalMeta(_Compact):
    """private_metadata of opsbot's modals."""

    action: str = Field(alias="a", max_length=40)
    channel: str = Field(alias="c", max_length=40)
    intent_id: str | None = Field(default=None, alias="i", max_length=40)
    plan_hash: str | None = Field(default=None, alias="h", max_length=64)
    version: int | None = Field(default=None, alias="v")
    workflow: str | None = Field(default=None, alias="w", max_length=100)

    def button(self) -> ButtonValue:
        """What a button carries, for the intent, plan and version this form was opened on."""
        if self.intent_id is None or self.plan_hash is None or self.version is None:
            raise InvalidInput("this form is not one opsbot recognises (was it edited?)")
        return button_value(self.model_dump_json(by_alias=True, include={"intent_id", "plan_hash", "version"}))


def button_value(raw: str | None) -> ButtonValue:
    value = ButtonValue.decode(raw)
    assert isinstance(value, ButtonValue)
    return value


def modal_meta(raw: str | None) -> ModalMeta:
    meta = ModalMeta.decode(raw)
    assert isinstance(meta, ModalMeta)
    return meta
