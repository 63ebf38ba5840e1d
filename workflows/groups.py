"""Roles that name Slack user groups: who holds a role now, and the refusal when a group cannot be checked.

A role's members are user ids and user group references (`workflows.config.is_user_group`). Members named by id
are decided here alone; a group is asked of the `GroupDirectory` only when no user id grants the role, and a group
whose membership is unknown refuses (fail closed) unless another member of the roles grants it.
"""

from __future__ import annotations

from collections.abc import Iterable

from workflows.config import OpsConfig, is_user_group
from workflows.errors import PermissionDenied
from workflows.ports import GroupDirectory

NO_SLACK = "this process has no Slack connection (SLACK_BOT_TOKEN is not set), so roles made of user groups are refused"


class MembershipUnknown(PermissionDenied):
    """A role names a user group whose members cannot be known now; whoever needs that group is refused."""

    code = "membership_unknown"


class NoGroups:
    """The directory of a process without Slack: it knows no group, so a role made of groups refuses clearly."""

    def __init__(self, why: str = NO_SLACK) -> None:
        self.why = why

    def members(self, group: str) -> frozenset[str]:
        raise MembershipUnknown(f"cannot check membership of {group}: {self.why}")


def holds_role(config: OpsConfig, groups: GroupDirectory, actor: str, roles: Iterable[str]) -> bool:
    """Whether `actor` holds one of `roles` now, by user id or through a user group a role names.

    Raises MembershipUnknown when nothing grants it and a group could not be checked: it might have granted it.
    """
    members = [m for role in sorted(set(roles)) for m in config.roles.get(role, ())]
    if any(actor == m for m in members if not is_user_group(m)):
        return True
    unknown: MembershipUnknown | None = None
    for group in dict.fromkeys(m for m in members if is_user_group(m)):
        try:
            if actor in groups.members(group):
                return True
        except MembershipUnknown as exc:
            unknown = unknown or exc
    if unknown is not None:
        raise unknown
    return False
