"""Change tickets: `ticket=OPS-123` on a request, checked against the environment's or the policy's rule, carried
in the plan (so in its hash, the approval and the audit log) with the link to the ticket."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from workflows.config import OpsConfig
from workflows.errors import InvalidInput

TICKET = "ticket"  # the reserved request parameter, like env=
# Whatever a team's rule says, a ticket id is short and plain: nothing that could be markup, a path or a command.
_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:#/-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Ticket:
    id: str
    url: str | None = None


def take_ticket(params: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The workflow's own parameters, and the ticket given with them (if any)."""
    rest = {k: v for k, v in params.items() if k != TICKET}
    given = params.get(TICKET)
    return rest, (str(given).strip() or None) if given is not None else None


def check_ticket(config: OpsConfig, workflow: str, environment: str, given: str | None) -> Ticket | None:
    """The ticket to carry, or an InvalidInput that says what is expected."""
    rule = config.ticket_rule(workflow, environment)
    if given is None:
        if rule is not None and rule.required:
            raise InvalidInput(
                f"ticket: {workflow} in {environment} needs a change ticket: add ticket=<id> matching {rule.pattern}"
            )
        return None
    if not _PLAIN.match(given):
        raise InvalidInput("ticket: a ticket id is up to 64 letters, digits and . _ : # / - (no spaces)")
    if rule is not None and not re.fullmatch(rule.pattern, given):
        raise InvalidInput(f"ticket: {given!r} does not match {rule.pattern} (the change tickets of {environment})")
    url = rule.link.replace("{ticket}", quote(given, safe="")) if rule is not None and rule.link else None
    return Ticket(given, url)
