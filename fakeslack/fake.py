"""The FakeSlack facade: start/stop the server, set up the workspace, inject faults, inspect what arrived."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from fakeslack.api import live_messages
from fakeslack.limits import DEFAULT_LIMITS, Limits
from fakeslack.models import Call, Ephemeral, Message, ResponsePost, UserGroup, View
from fakeslack.server import SlackHttpServer
from fakeslack.state import DEFAULT_CHANNELS, Policy, SlackState, Workspace
from fakeslack.traffic import Fault
from fakeslack.transcript import render

if TYPE_CHECKING:
    from fakeslack.driver import SlackDriver

T = TypeVar("T")


class FakeSlack:
    """A strict fake of Slack's Web API and response_urls on a real local HTTP server."""

    def __init__(
        self,
        token: str = "xoxb-fake-token",
        signing_secret: str = "fake-signing-secret",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        workspace: Workspace | None = None,
        channels: Mapping[str, str] | None = None,
        users: Mapping[str, str] | None = None,
        rate_burst: float = 3,
        rate_per_second: float | None = 1.0,
        limits: Limits = DEFAULT_LIMITS,
        policy: Policy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token = token
        self.signing_secret = signing_secret
        self.workspace = workspace or Workspace()
        self._host = host
        self._state = SlackState(
            token,
            self.workspace,
            channels=DEFAULT_CHANNELS if channels is None else channels,
            users=users or {},
            limits=limits,
            policy=policy,
            rate_burst=rate_burst,
            rate_per_second=rate_per_second,
            clock=clock,
        )
        self._http = SlackHttpServer(self._state, host, port)

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        """Bind the port and serve in a background thread; returns self."""
        self._http.start()
        with self._state.lock:
            self._state.base_url = self.url
        return self

    def stop(self) -> None:
        """Stop serving and release the port (idempotent)."""
        self._http.stop()

    def __enter__(self) -> FakeSlack:
        """Start the server for a `with` block."""
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop the server when the `with` block ends."""
        self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port (the fake must be started)."""
        return self._http.port

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:54321 ."""
        return f"http://{self._host}:{self.port}"

    @property
    def api_url(self) -> str:
        """Web API base URL ending in '/api/', suitable for WebClient(base_url=...)."""
        return f"{self.url}/api/"

    # --- workspace setup --------------------------------------------------------------------------

    def add_channel(self, channel_id: str, name: str) -> str:
        """Create a channel; returns its id."""
        with self._state.lock:
            self._state.channels[channel_id] = name.removeprefix("#")
        return channel_id

    def add_user(self, user_id: str, name: str) -> str:
        """Create a user; returns its id."""
        with self._state.lock:
            self._state.users[user_id] = name
        return user_id

    def channel_id(self, channel: str) -> str:
        """Resolve a channel id or name to its id, raising KeyError for unknown channels."""
        with self._state.lock:
            resolved = self._state.resolve_channel(channel)
        if resolved is None:
            raise KeyError(f"fake Slack has no channel {channel!r}; add it with add_channel()")
        return resolved

    def channel_name(self, channel: str) -> str:
        """The name of a channel given by id or name."""
        cid = self.channel_id(channel)
        with self._state.lock:
            return self._state.channel_name(cid)

    def user(self, user: str) -> tuple[str, str]:
        """Resolve a user id or name to (id, name), raising KeyError for unknown users."""
        with self._state.lock:
            uid = self._state.resolve_user(user)
            if uid is None:
                raise KeyError(f"fake Slack has no user {user!r}; add it with add_user()")
            return uid, self._state.users[uid]

    def add_usergroup(
        self, handle: str, users: Iterable[str] = (), *, name: str | None = None, group_id: str | None = None
    ) -> str:
        """Create an enabled user group `@handle` with `users` (ids or names of known users); returns its id."""
        members = [self.user(u)[0] for u in users]
        with self._state.lock:
            bare = handle.removeprefix("@")
            return self._state.add_usergroup(bare, members, name or bare, group_id).id

    def set_usergroup_users(self, group: str, users: Iterable[str]) -> None:
        """Replace a user group's members (by id or handle), as an admin's usergroups.users.update would."""
        members = [self.user(u)[0] for u in users]
        with self._state.lock:
            found = self._usergroup(group)
            found.users, found.updated_at = list(dict.fromkeys(members)), int(self._state.wall())

    def disable_usergroup(self, group: str) -> None:
        """Disable a user group (by id or handle): it leaves usergroups.list unless disabled ones are asked for."""
        with self._state.lock:
            found = self._usergroup(group)
            found.disabled_at = found.updated_at = int(self._state.wall())

    def usergroup(self, group: str) -> UserGroup:
        """A user group by id or handle (a copy), raising KeyError for unknown groups."""
        with self._state.lock:
            return copy.deepcopy(self._usergroup(group))

    def _usergroup(self, group: str) -> UserGroup:
        found = self._state.resolve_usergroup(group)
        if found is None:
            raise KeyError(f"fake Slack has no user group {group!r}; add it with add_usergroup()")
        return found

    # --- fault injection --------------------------------------------------------------------------

    def inject(
        self,
        method: str | None = None,
        *,
        status: int | None = None,
        retry_after: int | None = None,
        error: str | None = None,
        delay: float = 0.0,
        times: int | None = 1,
        channel: str | None = None,
        applied: bool = False,
    ) -> Fault:
        """Make the next `times` matching calls (None: all) fail with `status`/`error`, or answer late.

        `method` is a Web API method name, "response_url", or None for every request. With `applied`, the
        method takes effect first and only its answer is late or failed, as when Slack's reply is lost.
        """
        fault = Fault(
            method=method,
            status=status,
            retry_after=retry_after,
            error=error,
            delay=delay,
            times=times,
            channel=self.channel_id(channel) if channel else None,
            applied=applied,
        )
        with self._state.lock:
            return self._state.faults.add(fault)

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        with self._state.lock:
            self._state.faults.clear()

    def reset_rate_limits(self) -> None:
        """Refill every channel's token bucket."""
        with self._state.lock:
            self._state.limiter.reset()

    # --- issuing (used by the driver) -------------------------------------------------------------

    def issue_trigger(self, user: str) -> str:
        """A new single-use trigger_id for `user`, as Slack sends with an interaction."""
        with self._state.lock:
            return self._state.issue_trigger(self.user(user)[0])

    def issue_response_url(
        self, channel: str, user: str, *, message_ts: str | None = None, ephemeral_ts: str | None = None
    ) -> str:
        """A new response_url for a command or interaction by `user` in `channel`."""
        cid, uid = self.channel_id(channel), self.user(user)[0]
        with self._state.lock:
            return self._state.issue_response_url(cid, uid, message_ts=message_ts, ephemeral_ts=ephemeral_ts)

    # --- what Slack received ----------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """Every request answered, in order (copies)."""
        with self._state.lock:
            return copy.deepcopy(self._state.calls)

    def calls_to(self, method: str) -> list[Call]:
        """Requests to one method (or "response_url"), in order."""
        return [c for c in self.calls if c.method == method]

    @property
    def call_count(self) -> int:
        """How many requests were answered so far: every message, edit, ephemeral and view arrives as one."""
        with self._state.lock:
            return len(self._state.calls)

    def refusals(self) -> list[Call]:
        """The requests Slack would have refused (an error answer or an HTTP error), in order (copies)."""
        with self._state.lock:
            return [copy.deepcopy(c) for c in self._state.calls if not c.ok]

    def messages(self, channel: str, *, include_deleted: bool = False) -> list[Message]:
        """Current state of every message in a channel, thread replies included, in ts order."""
        cid = self.channel_id(channel)
        with self._state.lock:
            return copy.deepcopy(live_messages(self._state, cid, include_deleted))

    def message(self, channel: str, ts: str) -> Message | None:
        """One message by ts (None when absent or deleted)."""
        return next((m for m in self.messages(channel) if m.ts == ts), None)

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        """The replies under a parent message, in order."""
        return [m for m in self.messages(channel) if m.is_reply and m.thread_ts == thread_ts]

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[Ephemeral]:
        """Ephemeral messages, optionally for one channel and/or one user."""
        cid = self.channel_id(channel) if channel else None
        uid = self.user(user)[0] if user else None
        with self._state.lock:
            return [
                copy.deepcopy(e)
                for e in self._state.ephemerals
                if (cid is None or e.channel == cid) and (uid is None or e.user == uid)
            ]

    def views(self, kind: str | None = None, user: str | None = None) -> list[View]:
        """Modals opened and home tabs published, optionally filtered by type and user."""
        uid = self.user(user)[0] if user else None
        with self._state.lock:
            return [
                copy.deepcopy(v)
                for v in self._state.views.values()
                if (kind is None or v.type == kind) and (uid is None or v.user == uid)
            ]

    def view(self, view_id: str) -> View | None:
        """One view by id."""
        with self._state.lock:
            found = self._state.views.get(view_id)
            return copy.deepcopy(found) if found else None

    def home_view(self, user: str) -> View | None:
        """The home tab currently published for a user."""
        uid = self.user(user)[0]
        with self._state.lock:
            return self.view(self._state.home_views.get(uid, ""))

    def close_view(self, view_id: str) -> None:
        """Mark a modal closed (the driver does this after a submission that closes it)."""
        with self._state.lock:
            if view_id in self._state.views:
                self._state.views[view_id].closed = True

    def response_posts(self, response_url: str | None = None) -> list[ResponsePost]:
        """What the bot POSTed to response_urls (optionally one URL), in order."""
        with self._state.lock:
            posts = [
                p
                for ru in self._state.response_urls.values()
                if response_url is None or ru.url == response_url
                for p in ru.posts
            ]
        return sorted(copy.deepcopy(posts), key=lambda p: p.at)

    def wait_for(self, probe: Callable[[], T | None], timeout: float = 5.0) -> T:
        """Wait until `probe()` returns something truthy (checked on each change), else TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._state.changed:
            while True:
                result = probe()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"fake Slack: condition not met within {timeout}s")
                self._state.changed.wait(min(remaining, 0.25))

    def wait_for_message(
        self, channel: str, match: str | Callable[[Message], bool] | None = None, timeout: float = 5.0
    ) -> Message:
        """The first message in `channel` containing (or satisfying) `match`, waiting for it if needed."""

        def probe() -> Message | None:
            for msg in self.messages(channel):
                if (
                    match is None
                    or (callable(match) and match(msg))
                    or (isinstance(match, str) and (match in msg.text or match in json.dumps(msg.blocks)))
                ):
                    return msg
            return None

        return self.wait_for(probe, timeout)

    def transcript(self, channel: str, *, include_ephemeral: bool = True) -> str:
        """The channel and its threads as readable text (latest versions; replies indented)."""
        cid = self.channel_id(channel)
        with self._state.lock:
            msgs = copy.deepcopy(live_messages(self._state, cid, include_deleted=False))
            ephs = [
                copy.deepcopy(e)
                for e in self._state.ephemerals
                if include_ephemeral and e.channel == cid and not e.deleted
            ]
            names = dict(self._state.users)
            names[self.workspace.bot_user_id] = self.workspace.bot_user_name
            title = f"#{self._state.channel_name(cid)} ({cid})"
        return render(title, msgs, ephs, names)

    def driver(self, bot_url: str, **options: Any) -> SlackDriver:
        """A driver that sends signed Slack requests to the bot at `bot_url`."""
        from fakeslack.driver import SlackDriver

        return SlackDriver(self, bot_url, **options)
