"""`opsbot` whose RDS create answers only seconds after AWS accepted it: a window to kill a replica mid-step.

    OPSBOT_TEST_SLOW_CREATE=3 python -m tests.slow_serve serve --port 0

Test-only: production settings carry no such switch; this wraps the CLI's services with the tests' scripted RDS.
"""

from __future__ import annotations

import os

from adapters.aws import BotoAdapters
from opsbot import cli, wiring
from opsbot.settings import Settings
from tests.fakes import Script, ScriptedAdapters


def services(settings: Settings) -> wiring.Services:
    slow = float(os.environ.get("OPSBOT_TEST_SLOW_CREATE", "3"))
    script = Script(slow_after={"create_read_replica": slow})
    adapters = ScriptedAdapters(BotoAdapters(endpoint_url=settings.aws_endpoint_url), script)
    return wiring.build_services(settings, adapters=adapters)


def main() -> None:
    cli.SERVICES = services
    cli.main()


if __name__ == "__main__":
    main()
