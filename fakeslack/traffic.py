"""Traffic shaping for the fake: per-channel token buckets and injected faults (429s, 5xxs, slow answers)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

# Slack error names that go with the HTTP statuses a fault can return.
_STATUS_ERRORS: dict[int, str] = {
    429: "ratelimited",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "request_timeout",
}


def error_for_status(status: int) -> str:
    """Name the Slack error that accompanies an HTTP status."""
    return _STATUS_ERRORS.get(status, "fatal_error" if status >= 500 else "invalid_request")


class TokenBucket:
    """A token bucket: holds up to `burst` tokens and refills `rate` tokens per second."""

    def __init__(self, burst: float, rate: float, now: float) -> None:
        if burst < 1 or rate <= 0:
            raise ValueError("a token bucket needs burst >= 1 and rate > 0")
        self.burst = float(burst)
        self.rate = float(rate)
        self.tokens = float(burst)
        self.updated = now

    def _refill(self, now: float) -> None:
        """Add the tokens earned since the last update."""
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = max(self.updated, now)

    def wait(self, now: float) -> float:
        """Seconds until a token is available (0 when one is available now)."""
        self._refill(now)
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate

    def take(self, now: float) -> float:
        """Take one token; return 0 on success, else the seconds until one is available."""
        wait = self.wait(now)
        if wait == 0:
            self.tokens -= 1.0
        return wait


class ChannelLimiter:
    """One token bucket per channel, so a noisy channel never throttles a quiet one."""

    def __init__(self, burst: float, rate: float | None, clock: Callable[[], float]) -> None:
        if rate is not None and (burst < 1 or rate <= 0):
            raise ValueError("rate limiting needs burst >= 1 and rate > 0 (or rate None to switch it off)")
        self.burst = burst
        self.rate = rate
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    @property
    def enabled(self) -> bool:
        """False when rate limiting was switched off (rate None)."""
        return self.rate is not None

    def _bucket(self, channel: str, rate: float) -> TokenBucket:
        """The channel's bucket, created full on first use."""
        bucket = self._buckets.get(channel)
        if bucket is None:
            bucket = self._buckets[channel] = TokenBucket(self.burst, rate, self.clock())
        return bucket

    def retry_after(self, channel: str) -> int:
        """0 when `channel` may post now, else whole seconds to wait (at least 1); takes no token."""
        if self.rate is None:
            return 0
        wait = self._bucket(channel, self.rate).wait(self.clock())
        return 0 if wait == 0 else max(1, math.ceil(wait))

    def spend(self, channel: str) -> None:
        """Take a token for a message actually posted to `channel`."""
        if self.rate is not None:
            self._bucket(channel, self.rate).take(self.clock())

    def reset(self) -> None:
        """Forget all buckets (every channel starts with a full burst again)."""
        self._buckets.clear()


@dataclass
class Fault:
    """An injected misbehaviour for matching requests: a status to return and/or a delay before answering."""

    method: str | None
    status: int | None = None
    retry_after: int | None = None
    error: str | None = None
    delay: float = 0.0
    times: int | None = 1
    applied: bool = False  # the method runs first; only the answer is slow or wrong (Slack did it anyway)
    channel: str | None = None
    hits: int = 0

    @property
    def exhausted(self) -> bool:
        """True once the fault has fired `times` times."""
        return self.times is not None and self.hits >= self.times

    def matches(self, method: str, channel: str | None) -> bool:
        """True when this fault applies to a request for `method` in `channel`."""
        if self.exhausted:
            return False
        if self.method not in (None, "*", method):
            return False
        return self.channel is None or self.channel == channel

    def body(self) -> dict[str, object]:
        """The JSON body the fake returns when this fault fires with a status or error."""
        if self.error is not None:
            return {"ok": False, "error": self.error}
        return {"ok": False, "error": error_for_status(self.status or 200)}

    def headers(self) -> dict[str, str]:
        """Extra response headers (Retry-After for a 429)."""
        if self.status == 429:
            return {"Retry-After": str(self.retry_after if self.retry_after is not None else 1)}
        if self.retry_after is not None:
            return {"Retry-After": str(self.retry_after)}
        return {}


class FaultPlan:
    """The ordered list of injected faults; the first live match fires."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        """Queue a fault and return it (its `hits` counts how often it fired)."""
        if fault.status is None and fault.error is None and fault.delay <= 0:
            raise ValueError("a fault needs a status, an error or a delay")
        if fault.status is not None and not 200 <= fault.status <= 599:
            raise ValueError(f"not an HTTP status: {fault.status}")
        if fault.status is not None and fault.status < 400 and fault.error is None:
            raise ValueError("a fault answering with a success status needs an error name")
        self._faults.append(fault)
        return fault

    def take(self, method: str, channel: str | None) -> Fault | None:
        """Fire the first live fault matching the request, counting the hit."""
        for fault in self._faults:
            if fault.matches(method, channel):
                fault.hits += 1
                return fault
        return None

    def clear(self) -> None:
        """Drop every injected fault."""
        self._faults.clear()

    @property
    def pending(self) -> list[Fault]:
        """Faults that can still fire."""
        return [f for f in self._faults if not f.exhausted]
