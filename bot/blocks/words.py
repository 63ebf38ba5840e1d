"""A plan's changes in plain words: "Create RDS instance `billing-db-r1`: read replica of billing-db as db.r6g.large".

Plans name targets as `kind:name` (`rds:billing-db-r1`, `iam-role:reporting`); people read "RDS instance
billing-db-r1". Every renderer that names a change (the plan message, its notification text, confirm dialogs, the
App Home, the verdict's "what changed") says it through here, so it is said the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

from workflows.model import JSON

KINDS: MappingProxyType[str, str] = MappingProxyType(
    {
        "rds": "RDS instance",
        "rds-cluster": "Aurora cluster",
        "rds-snapshot": "RDS snapshot",
        "iam-role": "IAM role",
        "secret": "secret",
        "pg-role": "PostgreSQL role",
        "pg": "PostgreSQL database",
        "pg-database": "PostgreSQL database",
    }
)
# What a change did, once done ("create" → "created"); an action not listed reads "<action> done".
_DONE: MappingProxyType[str, str] = MappingProxyType(
    {
        "create": "created",
        "adopt": "adopted",
        "delete": "deleted",
        "modify": "modified",
        "attach": "attached a policy to",
        "put": "stored a new value in",
        "alter": "changed",
        "test": "tested",
        "promote": "promoted",
        "failover": "failed over",
        "migrate": "migrated",
        "snapshot": "snapshotted",
    }
)


def sentence(text: str) -> str:
    """`text` with its first letter capitalised and the rest left as written (`RDS` stays `RDS`)."""
    return text[:1].upper() + text[1:]


# What undoing a change does ("create" → "delete"); an action not listed reads "undo <action> of".
_UNDO: MappingProxyType[str, str] = MappingProxyType(
    {
        "create": "delete",
        "adopt": "delete",
        "attach": "detach the policy from",
        "put": "drop the new value of",
        "alter": "restore",
        "modify": "modify back",
        "promote": "restore the previous version of",
        "failover": "fail back",
    }
)


@dataclass(frozen=True, slots=True)
class Change:
    """One expected change of a plan, read tolerantly from its stored form."""

    action: str
    target: str
    detail: str = ""

    @property
    def kind(self) -> str:
        return self.target.partition(":")[0] if ":" in self.target else ""

    @property
    def name(self) -> str:
        """The target without its kind prefix: `billing-db-r1`."""
        return self.target.partition(":")[2] if ":" in self.target else self.target

    @property
    def resource(self) -> str:
        """`RDS instance billing-db-r1` (plain); an unknown kind keeps the target as written."""
        noun = KINDS.get(self.kind)
        return f"{noun} {self.name}" if noun else self.target

    def plain(self, *, detail: bool = True) -> str:
        """`Create RDS instance billing-db-r1: read replica of billing-db as db.r6g.large`."""
        head = sentence(f"{self.action} {self.resource}".strip())
        return head + (f": {self.detail}" if detail and self.detail else "")

    def undone(self) -> str:
        """What undoing it does: `delete RDS instance billing-db-r1`."""
        return f"{_UNDO.get(self.action.lower(), 'undo ' + self.action + ' of')} {self.resource}".strip()

    def done(self) -> str:
        """What the change did, in the past tense: `created RDS instance billing-db-r1`."""
        return f"{_DONE.get(self.action.lower(), self.action + ' done on')} {self.resource}".strip()


def changes(plan: JSON, limit: int = 200) -> tuple[Change, ...]:
    """The plan's mutations, at most `limit`; malformed entries are skipped."""
    raw = plan.get("mutations")
    items = raw[:limit] if isinstance(raw, list | tuple) else ()
    return tuple(
        Change(str(m.get("action", "")), str(m.get("target") or m.get("resource") or ""), str(m.get("detail", "")))
        for m in items
        if isinstance(m, dict)
    )


def summary(found: Sequence[Change], fallback: str, limit: int = 2, *, detail: bool = True) -> str:
    """The first `limit` changes in plain words, `; `-separated, with a count of the rest; `fallback` if none."""
    if not found:
        return fallback
    said = "; ".join(c.plain(detail=detail) for c in found[:limit])
    more = len(found) - limit
    return said + (f"; and {more} more change{'s' if more != 1 else ''}" if more > 0 else "")


def undoing(found: Sequence[Change], limit: int = 2) -> str:
    """What undoing the plan's changes does, latest first (compensation runs in reverse): `delete RDS instance …`."""
    if not found:
        return "undo its completed steps"
    said = "; ".join(c.undone() for c in list(reversed(found))[:limit])
    more = len(found) - limit
    return said + (f"; and undo {more} more change{'s' if more != 1 else ''}" if more > 0 else "")
