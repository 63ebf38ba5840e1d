"""Roles made of Slack user groups: who is in each group, from Slack, cached and refreshed in the background.

A group's members (`usergroups.users.list`; a `@handle` is turned into its id, and an id checked to be an enabled
group, through `usergroups.list`) are kept for `ttl` seconds. The worker's `slack-groups` loop wakes every quarter
of it and asks again about answers three quarters old, so a check rarely waits for Slack; a check that finds the
answer older than `ttl` asks Slack itself. Someone removed from a group so loses the role within `ttl`.

When Slack does not answer (a refused or dropped connection, a timeout, a 5xx, a rate limit), the last members Slack
gave stand for up to `max_stale` seconds after its last answer; then every check that needs the group is refused.
A definite answer (no such group, a disabled group, a token without `usergroups:read`) refuses at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import structlog
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from workflows.errors import ConfigError
from workflows.groups import MembershipUnknown
from workflows.ports import Clock
from workflows.runtime import SystemClock

log = structlog.get_logger("opsbot.usergroups")

# Slack's error codes that say it is down or busy, not that the question is wrong.
_OUTAGE = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout", "bad_gateway"}
)
_TOKEN_REFUSED = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"})


@dataclass(frozen=True, slots=True)
class _Answer:
    """A group's members as Slack last gave them, and when."""

    members: frozenset[str]
    at: datetime


@dataclass(frozen=True, slots=True)
class _Failure:
    """The latest failed attempt to ask Slack about a group since its last answer."""

    why: str
    at: datetime
    definite: bool  # Slack answered, and the answer is a refusal: nothing stale may stand in for it


class _Definite(Exception):
    """Slack answered, and the answer rules the group out."""


class SlackGroupDirectory:
    """The `GroupDirectory` of a process connected to Slack (see the module docstring for the bounds)."""

    def __init__(
        self,
        client: WebClient,
        *,
        ttl: float = 60.0,
        max_stale: float = 900.0,
        clock: Clock | None = None,
        groups: Iterable[str] = (),
    ) -> None:
        if ttl <= 0 or max_stale < ttl:
            raise ConfigError(f"user group cache: need 0 < ttl ({ttl:g}s) <= max_stale ({max_stale:g}s)")
        self.ttl, self.max_stale = ttl, max_stale
        self.refresh_every = ttl / 4  # the background loop's period
        self._refresh_age = ttl - self.refresh_every  # the age at which the loop asks again
        self._client = client
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._wanted = dict.fromkeys(groups)  # what the background refresh keeps warm: the config's, then any asked
        self._answers: dict[str, _Answer] = {}
        self._failures: dict[str, _Failure] = {}
        self._ids: tuple[datetime, dict[str, str]] | None = None  # enabled groups, handle -> id, and when read

    def members(self, group: str) -> frozenset[str]:
        """The group's members, as the bounds allow; raises MembershipUnknown (a refusal) otherwise."""
        now = self._clock.now()
        with self._lock:
            self._wanted.setdefault(group, None)
            answer, failure = self._answers.get(group), self._failures.get(group)
        fresh = answer is not None and _seconds(now, answer.at) < self.ttl
        # Slack failed a moment ago: the background refresh is on it, so a check does not wait on it again.
        failing = failure is not None and _seconds(now, failure.at) < self.refresh_every
        if not fresh and not failing:
            self._ask(group, now)
            with self._lock:
                answer, failure = self._answers.get(group), self._failures.get(group)
        return self._decide(group, answer, failure, now)

    def refresh(self) -> None:
        """One pass of the background loop: ask again about every group whose answer is getting old."""
        now = self._clock.now()
        with self._lock:
            due = [
                g
                for g in self._wanted
                if g not in self._answers or _seconds(now, self._answers[g].at) >= self._refresh_age
            ]
        for group in due:
            self._ask(group, now)

    def _decide(self, group: str, answer: _Answer | None, failure: _Failure | None, now: datetime) -> frozenset[str]:
        if failure is not None and failure.definite:
            raise MembershipUnknown(f"cannot check membership of {group}: {failure.why}")
        if answer is not None:
            age = _seconds(now, answer.at)
            if age <= self.max_stale:
                return answer.members  # fresh, or Slack did not answer and the last answer is recent enough to stand
            raise MembershipUnknown(f"cannot check membership of {group}: Slack has not answered for {_duration(age)}")
        why = failure.why if failure is not None else "not asked yet"
        raise MembershipUnknown(f"cannot check membership of {group}: Slack did not answer ({why})")

    def _ask(self, group: str, now: datetime) -> None:
        """Ask Slack for the group's members and record the answer, or why there is none."""
        try:
            members = frozenset(self._read(group, now))
        except _Definite as exc:
            self._failed(group, _Failure(str(exc), now, definite=True))
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "")
            status = exc.response.status_code
            if status == 429 or status >= 500 or error in _OUTAGE:
                self._failed(group, _Failure(f"HTTP {status} {error}".strip(), now, definite=False))
            else:
                self._failed(group, _Failure(_refusal(group, error), now, definite=True))
        except Exception as exc:  # a refused or dropped connection, a timeout: Slack may be down
            self._failed(group, _Failure(f"{type(exc).__name__}: {exc}", now, definite=False))
        else:
            with self._lock:
                before = self._answers.get(group)
                self._answers[group] = _Answer(members, now)
                self._failures.pop(group, None)
            if before is not None and before.members != members:
                log.info(
                    "slack_group_changed",
                    group=group,
                    added=sorted(members - before.members),
                    removed=sorted(before.members - members),
                )

    def _read(self, group: str, now: datetime) -> list[str]:
        response = self._client.usergroups_users_list(usergroup=self._group_id(group, now))
        return [str(user) for user in response.get("users") or ()]

    def _group_id(self, group: str, now: datetime) -> str:
        """The id of an enabled group named by handle or id (`usergroups.list`, read again as answers are)."""
        with self._lock:
            cached = self._ids
        if cached is None or _seconds(now, cached[0]) >= self._refresh_age:
            listed = self._client.usergroups_list().get("usergroups") or []
            ids = {str(g["handle"]): str(g["id"]) for g in listed if not g.get("date_delete")}
            cached = (now, ids)
            with self._lock:
                self._ids = cached
        ids = cached[1]
        if group.startswith("@"):
            if group[1:] not in ids:
                raise _Definite(f"Slack has no user group {group} (check the roles in the config)")
            return ids[group[1:]]
        if group not in ids.values():
            raise _Definite(f"Slack has no enabled user group with id {group} (check the roles in the config)")
        return group

    def _failed(self, group: str, failure: _Failure) -> None:
        with self._lock:
            self._failures[group] = failure
            if failure.definite:
                self._answers.pop(group, None)  # a group that is gone has no members to fall back on
            answered = self._answers.get(group)
        since = _seconds(failure.at, answered.at) if answered else None
        log.warning("slack_group_unreadable", group=group, error=failure.why, last_answer_seconds_ago=since)


def _refusal(group: str, error: str) -> str:
    """What a definite Slack error means for the operator."""
    if error == "missing_scope":
        return "the Slack token lacks usergroups:read (update the app from manifest.yml and reinstall it)"
    if error == "no_such_subteam":
        return f"Slack has no user group {group} (check the roles in the config)"
    if error == "plan_upgrade_required":
        return "this Slack workspace's plan has no user groups"
    if error in _TOKEN_REFUSED:
        return f"Slack refused the token ({error})"
    return f"Slack answered {error or 'an error'}"


def _seconds(now: datetime, then: datetime) -> float:
    return (now - then).total_seconds()


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds // 60:.0f} min"
