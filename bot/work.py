"""Where Slack work runs after the ack: a thread pool that knows when it is idle (for shutdown and for tests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

LAZY_WORKERS = 16


class LazyWork(ThreadPoolExecutor):
    """Bolt's listener executor: lazy listeners (preflight, store writes, views.open) run here, never in an ack."""

    def __init__(self, workers: int = LAZY_WORKERS) -> None:
        super().__init__(max_workers=workers, thread_name_prefix="slack-work")
        self._pending = 0
        self._idle = threading.Condition()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._idle:
            self._pending += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _future: Future[Any]) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until nothing submitted is still running; False if that took longer than `timeout`."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True
