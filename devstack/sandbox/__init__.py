"""`make sandbox`: a local Slack workspace in the browser, with the real `opsbot serve` behind it.

The page is served by this process, which also holds the local stack (moto, the fake Slack, a SQLite intent
store) and drives the bot the way Slack does: what a person does on the page becomes a signed slash command,
button click, view submission or event sent to `opsbot serve` over HTTP, and what the page shows is what the
fake Slack received from the bot, refusals included. Development tooling only: not in the wheel.
"""

from __future__ import annotations

from devstack.sandbox.server import Sandbox, running_sandbox

__all__ = ["Sandbox", "running_sandbox"]
