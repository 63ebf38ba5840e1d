"""When an approved intent may start: no earlier than the start its request asked for (`at=…`, a reserved request
parameter like `env=`), and inside its environment's maintenance windows where the policy requires them.

A policy requires the windows by default wherever the environment declares some (`window: optional` lifts that
for one workflow, or per environment). An intent that may not start now waits in `scheduled`; an approver's
Run now waives the windows for it. Approvals of a scheduled intent last `scheduled_approval_ttl_hours` when the
policy says so, else the usual TTL: a start after that asks for approval again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from workflows.config import MaintenanceWindow, OpsConfig
from workflows.errors import InvalidInput
from workflows.model import Intent, IntentStatus
from workflows.windows import WEEKDAYS, Opening, in_words, local_text, next_opening, opening_at, span_text, zone

START = "at"  # the reserved request parameter
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")


@dataclass(frozen=True, slots=True)
class Schedule:
    """When an intent starts, if not now, and the window occurrence it runs in (None: no window binds it)."""

    starts_at: datetime
    window: Opening | None = None

    def text(self, dated: bool = True) -> str:
        """`runs in the window Sun 02:00-04:00 UTC on 4 Jan`: fixed, so it can be stored as a reason."""
        if self.window is None:
            return f"runs at {local_text(self.starts_at, 'UTC')}"
        local = self.window.start.astimezone(zone(self.window.zone))
        on = f" on {local.day} {local:%b}" if dated else ""
        if self.starts_at > self.window.start:
            at = self.starts_at.astimezone(zone(self.window.zone))
            return f"runs at {at:%H:%M} in the window {self.window.label}{on}"
        return f"runs in the window {self.window.label}{on}"

    def describe(self, now: datetime) -> str:
        """`runs in the window Sun 02:00-04:00 UTC, in 5 h 12 min`, as of `now`."""
        return f"{self.text(dated=False)}, {until(self.starts_at, now)}"


def until(moment: datetime, now: datetime) -> str:
    seconds = (moment - now).total_seconds()
    return f"in {in_words(seconds)}" if seconds >= 1 else "now"


def take_start(params: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The workflow's own parameters, and the start time given with them (if any)."""
    rest = {k: v for k, v in params.items() if k != START}
    given = params.get(START)
    return rest, (str(given).strip() or None) if given is not None else None


def windows_for(config: OpsConfig, workflow: str, environment: str) -> tuple[MaintenanceWindow, ...]:
    """The maintenance windows `workflow` must run inside in `environment`; () when it may run any time."""
    env = config.environments.get(environment)
    if env is None or not env.maintenance_windows:
        return ()
    policy = config.policies.get(workflow)
    override = policy.by_environment.get(environment) if policy else None
    rule = (override.window if override else None) or (policy.window if policy else None) or "required"
    return env.maintenance_windows if rule == "required" else ()


def binding_windows(config: OpsConfig, intent: Intent) -> tuple[MaintenanceWindow, ...]:
    """The windows `intent`'s runs keep to: none once an approver chose Run now."""
    return () if intent.windows_waived else windows_for(config, intent.workflow, intent.environment)


def windows_text(windows: tuple[MaintenanceWindow, ...]) -> str:
    """`Sat/Sun 02:00-04:00 UTC; Wed 22:00-23:00 Europe/Berlin`."""
    return "; ".join(f"{'/'.join(d.capitalize() for d in WEEKDAYS if d in w.days)} {span_text(w)}" for w in windows)


def check_start(
    config: OpsConfig, workflow: str, environment: str, given: str | None, now: datetime
) -> datetime | None:
    """The start `at=` asks for, in UTC, or an InvalidInput that says what is expected (the value is not echoed)."""
    if given is None:
        return None
    windows = windows_for(config, workflow, environment)
    declared = windows or config.environment(environment).maintenance_windows
    zone_name = declared[0].timezone if declared else "UTC"
    moment = _parse_start(given, zone_name, now)
    if moment <= now:
        raise InvalidInput(f"at: {local_text(moment, zone_name)} has passed; give a time to come")
    if windows and opening_at(windows, moment) is None:
        following = next_opening(windows, moment)
        then = f"; the next opens {local_text(following.start, following.zone)}" if following else ""
        raise InvalidInput(
            f"at: {local_text(moment, zone_name)} is outside the maintenance windows of {environment} "
            f"({windows_text(windows)}){then}"
        )
    return moment


def _parse_start(given: str, zone_name: str, now: datetime) -> datetime:
    """`HH:MM` (the next such time) or ISO 8601; without an offset, in the environment's windows' time zone."""
    tz = zone(zone_name)
    clock = _CLOCK.match(given)
    if clock is not None and int(clock[1]) < 24 and int(clock[2]) < 60:
        local_now = now.astimezone(tz)
        wanted = time(int(clock[1]), int(clock[2]))
        moment = datetime.combine(local_now.date(), wanted, tz)
        if moment <= local_now:
            moment = datetime.combine(local_now.date() + timedelta(days=1), wanted, tz)
        return moment.astimezone(UTC)
    try:
        parsed = datetime.fromisoformat(given)
    except ValueError:
        raise InvalidInput(
            f"at: expected a time of day such as 02:00 (the next one, {zone_name}) or a date and time in ISO 8601 "
            "such as 2026-01-04T02:00Z"
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)).astimezone(UTC)


def next_start(config: OpsConfig, intent: Intent, now: datetime) -> Schedule | None:
    """When `intent` may start if not now: no earlier than its requested start, and inside a maintenance window
    where the policy requires one. None when now will do, or an approver chose Run now."""
    if intent.windows_waived:
        return None
    earliest = max(now, intent.not_before or now)
    windows = windows_for(config, intent.workflow, intent.environment)
    if not windows:
        return Schedule(earliest) if earliest > now else None
    inside = opening_at(windows, earliest)
    if inside is not None:
        return Schedule(earliest, inside) if earliest > now else None
    following = next_opening(windows, earliest)
    assert following is not None, "a weekly window always opens again"
    return Schedule(following.start, following)


def shown_schedule(config: OpsConfig, intent: Intent, now: datetime) -> Schedule | None:
    """What to show about its start: a scheduled intent's, or where approving it now would put it."""
    if intent.status is IntentStatus.SCHEDULED and intent.next_check_at is not None:
        windows = binding_windows(config, intent)
        return Schedule(intent.next_check_at, opening_at(windows, intent.next_check_at) if windows else None)
    if intent.status.awaiting_approval:
        return next_start(config, intent, now)
    return None


def scheduled_approval_ttl(config: OpsConfig, workflow: str, environment: str) -> float | None:
    """Seconds an approval of a scheduled intent lasts, where the policy says (per environment, then overall)."""
    policy = config.policies.get(workflow)
    if policy is None:
        return None
    override = policy.by_environment.get(environment)
    hours = (override.scheduled_approval_ttl_hours if override else None) or policy.scheduled_approval_ttl_hours
    return hours * 3600 if hours else None


def approval_ttl(config: OpsConfig, intent: Intent, schedule: Schedule | None, usual: float) -> float:
    """How long an approval given now lasts: longer for an intent that will wait, when the policy says so."""
    longer = scheduled_approval_ttl(config, intent.workflow, intent.environment) if schedule is not None else None
    return max(usual, longer) if longer else usual


def scheduled_reason(schedule: Schedule, expires_at: datetime | None = None) -> str:
    """Why it waits, and whether the approval will still hold when it starts."""
    zone_name = schedule.window.zone if schedule.window else "UTC"
    if expires_at is not None and expires_at <= schedule.starts_at:
        return (
            f"{schedule.text()}; the approval expires before that ({local_text(expires_at, zone_name)}), so it "
            "will ask for a new approval when it starts"
        )
    return schedule.text()


def start_text(config: OpsConfig, intent: Intent, now: datetime) -> str:
    """`the window Sun 02:00-04:00 UTC opened`, or `its start time came`."""
    windows = binding_windows(config, intent)
    inside = opening_at(windows, now) if windows else None
    return f"the window {inside.label} opened" if inside else "its start time came"


def expired_hint(config: OpsConfig, intent: Intent, usual: float) -> str:
    """What would have kept a scheduled intent's approval valid."""
    if scheduled_approval_ttl(config, intent.workflow, intent.environment) is not None:
        return ""
    return (
        f" (approvals last {in_words(usual)}; the policy's scheduled_approval_ttl_hours makes approvals of "
        "scheduled intents last longer)"
    )
