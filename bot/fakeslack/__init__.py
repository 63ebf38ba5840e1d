"""A strict fake Slack on a local HTTP server, plus a driver that talks to a bot the way Slack does."""

from __future__ import annotations

from bot.fakeslack.driver import ACK_DEADLINE, Ack, SlackDriver, sign
from bot.fakeslack.fake import FakeSlack
from bot.fakeslack.limits import DEFAULT_LIMITS, Limits, validate_blocks, validate_view
from bot.fakeslack.models import Call, Ephemeral, Message, ResponsePost, View
from bot.fakeslack.state import Policy, Workspace
from bot.fakeslack.traffic import Fault, TokenBucket

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
    "View",
    "Workspace",
    "sign",
    "validate_blocks",
    "validate_view",
]
