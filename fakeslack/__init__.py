"""A strict fake Slack on a local HTTP server, plus a driver that talks to a bot the way Slack does."""

from __future__ import annotations

from fakeslack.driver import ACK_DEADLINE, Ack, SlackDriver, sign
from fakeslack.fake import FakeSlack
from fakeslack.limits import DEFAULT_LIMITS, Limits, validate_blocks, validate_view
from fakeslack.models import Call, Ephemeral, Message, ResponsePost, UserGroup, View
from fakeslack.state import Policy, Workspace
from fakeslack.traffic import Fault, TokenBucket

__all__ = [
    "ACK_DEADLINE",
    "DEFAULT_LIMITS",
    "Ack",
    "Call",
    "Ephemeral",
    "FakeSlack",
    "Fault",
    "Limits",
    "Message",
    "Policy",
    "ResponsePost",
    "SlackDriver",
    "TokenBucket",
    "UserGroup",
    "View",
    "Workspace",
    "sign",
    "validate_blocks",
    "validate_view",
]
