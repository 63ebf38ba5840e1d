"""`opsbot` with a SIGKILL at one crash point, for the end-to-end crash matrix.

    python -m tests.crashing_cli <step>:<phase> <opsbot arguments...>

Test-only: production settings carry no fault switch; this wraps the CLI's services with the kit's seam.
"""

from __future__ import annotations

import sys
from functools import partial

from conformance.faults import KillAtPoint
from opsbot import cli, wiring


def main() -> None:
    point = sys.argv.pop(1)
    cli.SERVICES = partial(wiring.build_services, faults=KillAtPoint(point))
    cli.main()


if __name__ == "__main__":
    main()
