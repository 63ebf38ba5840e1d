"""The crash seam tests load: SIGKILL the process when the executor reaches a named point."""

from __future__ import annotations

import os
import signal


class KillAtPoint:
    """Crash the process with SIGKILL at `<step>:<phase>` (see `workflows.executor.fault_point`)."""

    def __init__(self, point: str) -> None:
        self.point = point

    def reached(self, point: str) -> None:
        if point == self.point:
            os.kill(os.getpid(), signal.SIGKILL)
