"""The crash seam tests load: SIGKILL the process when the executor reaches a named point."""

from __future__ import annotations

import os
import signal


class KillAtPoint:
    """Crash the process with SIGKILL at `<step>:<phase>` (see `workflows.executor.fault_point`).

    `resize_reader[*]:after_effect` names the first run of a repeated step, whatever its item.
    """

    def __init__(self, point: str) -> None:
        self.point = point

    def reached(self, point: str) -> None:
        if matches(point, self.point):
            os.kill(os.getpid(), signal.SIGKILL)


def matches(name: str, pattern: str) -> bool:
    """`name` is `pattern`, where a `[*]` in the pattern stands for any one `[<item>]`."""
    if "[*]" not in pattern:
        return name == pattern
    head, _, tail = pattern.partition("[*]")
    return name.startswith(head + "[") and name.endswith("]" + tail) and len(name) > len(head) + len(tail) + 2
