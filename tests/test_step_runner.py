"""The step runner: bounded calls, lease heartbeats while a call runs, recovery after a hung call."""

from __future__ import annotations

import threading
import time

import pytest

from workflows.errors import OutcomeUnknown
from workflows.steps import StepRunner


def test_a_call_past_its_timeout_has_an_unknown_outcome_and_the_runner_recovers() -> None:
    """A hung step raises OutcomeUnknown at its deadline; the next call runs on a fresh thread."""
    release = threading.Event()
    runner = StepRunner()
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown, match=r"timeout of 0\.2s"):
        runner.call(lambda: release.wait(10), 0.2, "hung_step")
    assert time.monotonic() - started < 2
    assert runner.call(lambda: 42, 1.0, "next_step") == 42
    release.set()
    runner.close()


def test_the_lease_is_renewed_while_a_long_call_runs() -> None:
    """The heartbeat runs every `every` seconds while the call is in flight, and not after it returns."""
    beats: list[float] = []
    runner = StepRunner()

    def slow() -> str:
        time.sleep(0.5)
        return "done"

    assert runner.call(slow, 5.0, "slow", heartbeat=lambda: beats.append(1), every=0.1) == "done"
    count = len(beats)
    assert 3 <= count <= 6
    time.sleep(0.2)
    assert len(beats) == count
    runner.close()


def test_errors_from_the_call_propagate_unchanged() -> None:
    """An exception raised by the step reaches the executor's classifier as it was raised."""
    runner = StepRunner()

    def boom() -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        runner.call(boom, 1.0, "boom")
    runner.close()
