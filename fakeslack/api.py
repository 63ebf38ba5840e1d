"""Web API methods of the fake, strict like Slack: auth, required arguments, Block Kit limits, rate limits."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fakeslack.limits import check_message_text, validate_blocks, validate_view
from fakeslack.models import JSON, Message
from fakeslack.state import SlackState

# Methods whose successful posts spend a token of that channel's bucket (refused calls cost nothing).
RATE_LIMITED_METHODS = frozenset({"chat.postMessage"})
# The bot scopes each method needs, any one of them (conversations.history: public or private channels).
METHOD_SCOPES: dict[str, frozenset[str]] = {
    "chat.postMessage": frozenset({"chat:write"}),
    "chat.update": frozenset({"chat:write"}),
    "chat.postEphemeral": frozenset({"chat:write"}),
    "conversations.history": frozenset({"channels:history", "groups:history"}),
    "usergroups.list": frozenset({"usergroups:read"}),
    "usergroups.users.list": frozenset({"usergroups:read"}),
}


@dataclass
class ApiResult:
    """An HTTP answer: status, JSON body and extra headers."""

    status: int
    body: JSON
    headers: dict[str, str] = field(default_factory=dict)


class Refusal(Exception):
    """A Slack error answer raised from inside a method handler."""

    def __init__(self, error: str, *messages: str, status: int = 200) -> None:
        super().__init__(error)
        self.result = refused(error, *messages, status=status)


def refused(error: str, *messages: str, status: int = 200) -> ApiResult:
    """An `{"ok": false, "error": ...}` answer, with Slack's response_metadata.messages when given."""
    body: JSON = {"ok": False, "error": error}
    if messages:
        body["errors"] = list(messages)
        body["response_metadata"] = {"messages": list(messages)}
    return ApiResult(status, body)


def ok(**fields: Any) -> ApiResult:
    """A successful answer carrying `fields`."""
    return ApiResult(200, {"ok": True, **fields})


def text_arg(args: JSON, key: str) -> str | None:
    """A string argument, or None when absent or empty."""
    value = args.get(key)
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def bool_arg(args: JSON, key: str) -> bool:
    """A boolean argument as Slack reads it from JSON or forms ('true', '1')."""
    value = args.get(key)
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return bool(value)


def json_arg(args: JSON, key: str, kind: type, error: str) -> Any:
    """A JSON (or JSON-string form) argument; refuse with `error` when malformed."""
    value = args.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise Refusal(error, f"[ERROR] {key} is not valid JSON: {exc.msg}") from None
    if not isinstance(value, kind):
        raise Refusal(error, f"[ERROR] {key} must be a JSON {kind.__name__}")
    return value


def authenticate(state: SlackState, bearer: str | None, args: JSON, is_json: bool) -> ApiResult | None:
    """Refuse a request whose token is missing (not_authed) or wrong (invalid_auth)."""
    token = bearer
    if token is None and not is_json:
        token = text_arg(args, "token")
    if token is None:
        return refused("not_authed")
    if token != state.token:
        return refused("invalid_auth")
    return None


def dispatch(state: SlackState, method: str, args: JSON, bearer: str | None, is_json: bool) -> ApiResult:
    """Run one Web API method against the state (the caller holds the state lock)."""
    handler = METHODS.get(method)
    if handler is None:
        return ApiResult(200, {"ok": False, "error": "unknown_method", "req_method": method})
    denied = authenticate(state, bearer, args, is_json)
    if denied is not None:
        return denied
    result = _authorized(state, method, handler, args)
    # Slack names the token's scopes on every authenticated answer; `opsbot doctor` reads them from auth.test.
    result.headers.setdefault("x-oauth-scopes", ",".join(state.workspace.scopes))
    return result


def _authorized(state: SlackState, method: str, handler: Handler, args: JSON) -> ApiResult:
    """Run a method for an authenticated token: missing_scope first, then the channel's rate limit."""
    needed = METHOD_SCOPES.get(method)
    if needed and needed.isdisjoint(state.workspace.scopes):
        body: JSON = {
            "ok": False,
            "error": "missing_scope",
            "needed": ",".join(sorted(needed)),
            "provided": ",".join(state.workspace.scopes),
        }
        return ApiResult(200, body)
    channel = state.resolve_channel(args.get("channel")) if method in RATE_LIMITED_METHODS else None
    if channel is not None:
        wait = state.limiter.retry_after(channel)
        if wait:
            return ApiResult(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(wait)})
    try:
        result = handler(state, args)
    except Refusal as refusal:
        return refusal.result
    if channel is not None and result.body.get("ok"):
        state.limiter.spend(channel)
    return result


# --- message content ------------------------------------------------------------------------------


@dataclass
class Content:
    """The text, blocks and attachments of a message being posted or edited."""

    text: str | None
    blocks: list[JSON] | None
    attachments: list[JSON] | None

    @property
    def empty(self) -> bool:
        """True when there is nothing to show."""
        return not self.text and not self.blocks and not self.attachments


def read_content(state: SlackState, args: JSON, *, required: bool = True) -> Content:
    """Parse and check text/blocks/attachments; refuse like Slack (no_text, msg_too_long, invalid_blocks)."""
    content = Content(
        text_arg(args, "text"),
        json_arg(args, "blocks", list, "invalid_blocks_format"),
        json_arg(args, "attachments", list, "invalid_attachments"),
    )
    if required and content.empty:
        raise Refusal("no_text")
    too_long = check_message_text(content.text, state.limits)
    if too_long:
        raise Refusal("msg_too_long", *too_long)
    if content.blocks is not None:
        problems = validate_blocks(content.blocks, "message", state.limits)
        if problems:
            raise Refusal("invalid_blocks", *problems)
    return content


def channel_arg(state: SlackState, args: JSON, key: str = "channel") -> str:
    """Resolve the channel argument or refuse with channel_not_found."""
    channel = state.resolve_channel(args.get(key))
    if channel is None:
        raise Refusal("channel_not_found")
    return channel


def thread_arg(state: SlackState, channel: str, args: JSON) -> str | None:
    """Refuse thread_not_found unless thread_ts names a live parent message in `channel` (strict)."""
    thread_ts = text_arg(args, "thread_ts")
    if thread_ts is not None and state.thread_parent(channel, thread_ts) is None:
        raise Refusal("thread_not_found", f"[ERROR] no parent message with ts {thread_ts} in {channel}")
    return thread_ts


# --- methods --------------------------------------------------------------------------------------


def auth_test(state: SlackState, args: JSON) -> ApiResult:
    """auth.test: who the token belongs to."""
    ws = state.workspace
    return ok(
        url=f"https://{ws.team_domain}.slack.com/",
        team=ws.team_name,
        user=ws.bot_user_name,
        team_id=ws.team_id,
        user_id=ws.bot_user_id,
        bot_id=ws.bot_id,
        is_enterprise_install=False,
    )


def chat_post_message(state: SlackState, args: JSON) -> ApiResult:
    """chat.postMessage: a new message or thread reply."""
    channel = channel_arg(state, args)
    content = read_content(state, args)
    thread_ts = thread_arg(state, channel, args)
    msg = state.post(
        channel,
        content.text or "",
        content.blocks or [],
        via="chat.postMessage",
        thread_ts=thread_ts,
        reply_broadcast=bool_arg(args, "reply_broadcast"),
        attachments=content.attachments,
        metadata=json_arg(args, "metadata", dict, "invalid_metadata_format"),
    )
    return ok(channel=channel, ts=msg.ts, message=msg.to_api())


def chat_update(state: SlackState, args: JSON) -> ApiResult:
    """chat.update: edit a message the bot posted."""
    channel = channel_arg(state, args)
    ts = text_arg(args, "ts")
    if ts is None:
        raise Refusal("invalid_arguments", "[ERROR] missing required field: ts [json-pointer:/ts]")
    msg = state.find_message(channel, ts)
    if msg is None:
        raise Refusal("message_not_found")
    if msg.user != state.workspace.bot_user_id:
        raise Refusal("cant_update_message")
    content = read_content(state, args)
    state.edit(msg, text=content.text, blocks=content.blocks, via="chat.update")
    if content.attachments is not None:
        msg.attachments = content.attachments
    return ok(channel=channel, ts=msg.ts, text=msg.text, message=msg.to_api())


def chat_post_ephemeral(state: SlackState, args: JSON) -> ApiResult:
    """chat.postEphemeral: a message only one user sees."""
    channel = channel_arg(state, args)
    user_arg = text_arg(args, "user")
    if user_arg is None:
        raise Refusal("user_not_found", "[ERROR] missing required field: user [json-pointer:/user]")
    user = state.resolve_user(user_arg)
    if user is None:
        raise Refusal("user_not_found")
    content = read_content(state, args)
    thread_ts = thread_arg(state, channel, args)
    eph = state.post_ephemeral(
        channel, user, content.text or "", content.blocks or [], via="chat.postEphemeral", thread_ts=thread_ts
    )
    return ok(message_ts=eph.ts)


def chat_get_permalink(state: SlackState, args: JSON) -> ApiResult:
    """chat.getPermalink: the web link of a message."""
    channel = channel_arg(state, args)
    msg = state.find_message(channel, text_arg(args, "message_ts"))
    if msg is None:
        raise Refusal("message_not_found")
    link = f"https://{state.workspace.team_domain}.slack.com/archives/{channel}/p{msg.ts.replace('.', '')}"
    if msg.is_reply:
        link += f"?thread_ts={msg.thread_ts}&cid={channel}"
    return ok(channel=channel, permalink=link)


def _view_arg(args: JSON) -> JSON:
    """The view argument as a dict, refusing invalid_arguments when absent or malformed."""
    view = json_arg(args, "view", dict, "invalid_arguments")
    if view is None:
        raise Refusal("invalid_arguments", "[ERROR] missing required field: view [json-pointer:/view]")
    return dict(view)


def views_open(state: SlackState, args: JSON) -> ApiResult:
    """views.open: open a modal with a fresh, unused trigger_id."""
    trigger_id = text_arg(args, "trigger_id") or text_arg(args, "interactivity_pointer")
    if trigger_id is None:
        raise Refusal("invalid_arguments", "[ERROR] missing required field: trigger_id [json-pointer:/trigger_id]")
    problem = state.check_trigger(trigger_id)
    if problem is not None:
        raise Refusal(problem)
    view = _view_arg(args)
    problems = validate_view(view, "modal", state.limits)
    if problems:
        raise Refusal("invalid_arguments", *problems)
    trigger = state.triggers[trigger_id]
    trigger.used_at = state.clock()
    stored = state.store_view(view, user=trigger.user, via="views.open", trigger_id=trigger_id)
    ws = state.workspace
    return ok(view=stored.to_api(ws.team_id, ws.app_id, ws.bot_id))


def views_publish(state: SlackState, args: JSON) -> ApiResult:
    """views.publish: set a user's home tab."""
    user_arg = text_arg(args, "user_id")
    user = state.resolve_user(user_arg) if user_arg is not None else None
    if user is None or user_arg != user:
        raise Refusal("invalid_arguments", "invalid `user_id`")
    view = _view_arg(args)
    problems = validate_view(view, "home", state.limits)
    if problems:
        raise Refusal("invalid_arguments", *problems)
    current = state.views.get(state.home_views.get(user, ""))
    wanted_hash = text_arg(args, "hash")
    if wanted_hash is not None and (current is None or current.hash != wanted_hash):
        raise Refusal("hash_conflict")
    stored = state.store_view(view, user=user, via="views.publish")
    ws = state.workspace
    return ok(view=stored.to_api(ws.team_id, ws.app_id, ws.bot_id))


def conversations_history(state: SlackState, args: JSON) -> ApiResult:
    """conversations.history: a channel's top-level messages, newest first (metadata only when asked)."""
    channel = channel_arg(state, args)
    try:
        limit = min(max(int(args.get("limit") or 100), 1), 999)
        oldest = float(args.get("oldest") or 0)
    except (TypeError, ValueError):
        raise Refusal("invalid_arguments", "[ERROR] limit and oldest must be numbers") from None
    with_metadata = bool_arg(args, "include_all_metadata")
    top = [m for m in live_messages(state, channel, False) if m.thread_ts in (None, m.ts) and float(m.ts) >= oldest]
    page = list(reversed(top))[:limit]
    messages = []
    for m in page:
        api = m.to_api()
        if not with_metadata:
            api.pop("metadata", None)
        messages.append(api)
    return ok(messages=messages, has_more=len(top) > limit)


def usergroups_list(state: SlackState, args: JSON) -> ApiResult:
    """usergroups.list: the workspace's user groups, disabled ones only when asked (`team_id` is for org tokens)."""
    with_disabled = bool_arg(args, "include_disabled")
    groups = [g for g in state.usergroups.values() if with_disabled or not g.disabled_at]
    return ok(
        usergroups=[
            g.to_api(include_users=bool_arg(args, "include_users"), include_count=bool_arg(args, "include_count"))
            for g in groups
        ]
    )


def usergroups_users_list(state: SlackState, args: JSON) -> ApiResult:
    """usergroups.users.list: the user ids in one user group, named by its id (a handle is not an id)."""
    group_id = text_arg(args, "usergroup")
    if group_id is None:
        raise Refusal("invalid_arguments", "[ERROR] missing required field: usergroup [json-pointer:/usergroup]")
    group = state.usergroups.get(group_id)
    if group is None:
        raise Refusal("no_such_subteam")
    # `include_disabled` is accepted; the fake lists a disabled group's users either way (opsbot reads whether a
    # group is enabled from usergroups.list, never from this answer).
    return ok(users=list(group.users))


Handler = Callable[[SlackState, JSON], ApiResult]

METHODS: dict[str, Handler] = {
    "auth.test": auth_test,
    "chat.postMessage": chat_post_message,
    "chat.update": chat_update,
    "chat.postEphemeral": chat_post_ephemeral,
    "chat.getPermalink": chat_get_permalink,
    "conversations.history": conversations_history,
    "views.open": views_open,
    "views.publish": views_publish,
    "usergroups.list": usergroups_list,
    "usergroups.users.list": usergroups_users_list,
}


def message_channel(state: SlackState, args: JSON) -> str | None:
    """The channel a call concerns, for fault matching and records (None when it names none)."""
    return state.resolve_channel(args.get("channel"))


def live_messages(state: SlackState, channel: str, include_deleted: bool) -> list[Message]:
    """Messages of a channel in ts order, optionally including deleted ones."""
    msgs = state.messages.get(channel, {}).values()
    return sorted((m for m in msgs if include_deleted or not m.deleted), key=lambda m: ts_key(m.ts))


def ts_key(ts: str) -> tuple[int, int]:
    """Sort key for a Slack ts (seconds, microseconds) without float rounding."""
    seconds, _, micros = ts.partition(".")
    return int(seconds), int(micros or 0)
