"""The conformance kit: what every workflow, in this catalog or a team's own, is checked against.

- `check_workflow`: a static check of a workflow class (what registration refuses, plus external ids
  checkpointed as soon as known and an input model that rejects the classic bad identifiers);
- `ScriptedWorld` / `ScriptedAdapters`: in-memory (optionally file-backed, so a crashed process's effects
  survive it) adapters that count every side effect and fail calls on demand;
- `crash_cases` / `run_crash_case`: the crash matrix, for every step and every compensation of every workflow.
"""

from __future__ import annotations

from conformance.checks import BAD_IDENTIFIERS, check_workflow
from conformance.crash import CrashCase, CrashReport, Example, crash_cases, run_crash_case
from conformance.faults import KillAtPoint
from conformance.world import Fault, ScriptedAdapters, ScriptedWorld

__all__ = [
    "BAD_IDENTIFIERS",
    "CrashCase",
    "CrashReport",
    "Example",
    "Fault",
    "KillAtPoint",
    "ScriptedAdapters",
    "ScriptedWorld",
    "check_workflow",
    "crash_cases",
    "run_crash_case",
]
