"""The fake Slack is as strict as Slack: tokens, threads, Block Kit limits, triggers, response_urls, rates."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from email.message import Message
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier

from fakeslack import FakeSlack, SlackDriver, sign

TOKEN = "xoxb-test-token"
SECRET = "test-signing-secret"
OPS, DEPLOYS = "C0OPS0001", "C0DEP0001"
ALICE = "U0ALICE01"
HTTP_TIMEOUT = 5


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> Iterator[FakeSlack]:
    with FakeSlack(
        token=TOKEN,
        signing_secret=SECRET,
        channels={OPS: "ops", DEPLOYS: "deploys"},
        users={ALICE: "alice"},
        rate_burst=3,
        rate_per_second=1.0,
        clock=clock,
    ) as running:
        yield running


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(token=TOKEN, base_url=fake.api_url, timeout=HTTP_TIMEOUT)


def api_error(call: Callable[[], Any]) -> SlackApiError:
    """Run a WebClient call that must be refused and return the error."""
    with pytest.raises(SlackApiError) as refused:
        call()
    return refused.value


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button(label: str = "Go", *, action_id: str = "go", value: str = "v") -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "action_id": action_id,
        "value": value,
    }


def modal(trigger_blocks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "why",
        "title": {"type": "plain_text", "text": "Why?"},
        "submit": {"type": "plain_text", "text": "Send"},
        "blocks": trigger_blocks
        or [
            {
                "type": "input",
                "block_id": "reason",
                "label": {"type": "plain_text", "text": "Reason"},
                "element": {"type": "plain_text_input", "action_id": "text"},
            }
        ],
    }


# --- auth and arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "form", "expected"),
    [
        ({}, {"channel": OPS, "text": "hi"}, "not_authed"),
        ({"Authorization": "Bearer xoxb-wrong"}, {"channel": OPS, "text": "hi"}, "invalid_auth"),
        ({}, {"channel": OPS, "text": "hi", "token": "xoxb-wrong"}, "invalid_auth"),
        ({"Authorization": f"Bearer {TOKEN}"}, {"channel": OPS, "text": "hi"}, None),
        ({}, {"channel": OPS, "text": "hi", "token": TOKEN}, None),
    ],
)
def test_token_is_checked(fake: FakeSlack, headers: dict[str, str], form: dict[str, str], expected: str | None) -> None:
    """A missing token is not_authed, a wrong one invalid_auth, and only the configured token posts."""
    reply = requests.post(f"{fake.api_url}chat.postMessage", data=form, headers=headers, timeout=HTTP_TIMEOUT)
    body = reply.json()
    assert body.get("error") == expected
    assert body["ok"] is (expected is None)
    assert len(fake.messages(OPS)) == (1 if expected is None else 0)


def test_wrong_token_through_webclient_is_invalid_auth(fake: FakeSlack) -> None:
    """slack_sdk sees invalid_auth when its bearer token is not the fake's."""
    wrong = WebClient(token="xoxb-nope", base_url=fake.api_url, timeout=HTTP_TIMEOUT)
    assert api_error(wrong.auth_test).response["error"] == "invalid_auth"


def test_json_body_must_carry_its_token_in_the_header(fake: FakeSlack) -> None:
    """Like Slack, a JSON body's token field does not authenticate; only the Authorization header does."""
    reply = requests.post(
        f"{fake.api_url}chat.postMessage",
        json={"channel": OPS, "text": "hi", "token": TOKEN},
        timeout=HTTP_TIMEOUT,
    )
    assert reply.json()["error"] == "not_authed"


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing:UserWarning")
@pytest.mark.parametrize(
    ("method", "kwargs", "error"),
    [
        ("chat_postMessage", {"channel": "C0NOPE0001", "text": "hi"}, "channel_not_found"),
        ("chat_postMessage", {"channel": OPS}, "no_text"),
        ("chat_postMessage", {"channel": OPS, "blocks": "[not json"}, "invalid_blocks_format"),
        ("chat_update", {"channel": OPS, "ts": "1700000000.000100", "text": "x"}, "message_not_found"),
        ("chat_postEphemeral", {"channel": OPS, "user": "U0NOBODY1", "text": "x"}, "user_not_found"),
        ("chat_getPermalink", {"channel": OPS, "message_ts": "1700000000.000100"}, "message_not_found"),
        (
            "views_publish",
            {"user_id": "U0NOBODY1", "view": {"type": "home", "blocks": []}},
            "invalid_arguments",
        ),
    ],
)
def test_bad_arguments_are_refused_with_slack_error_names(
    client: WebClient, method: str, kwargs: dict[str, Any], error: str
) -> None:
    """Each method refuses missing or unknown arguments with the error name Slack uses."""
    refused = api_error(lambda: getattr(client, method)(**kwargs))
    assert refused.response["error"] == error


def test_home_view_must_be_of_type_home(client: WebClient, fake: FakeSlack) -> None:
    """views.publish refuses a modal and stores nothing; a home view is published and recorded."""
    refused = api_error(lambda: client.views_publish(user_id=ALICE, view=modal()))
    assert refused.response["error"] == "invalid_arguments"
    assert fake.home_view(ALICE) is None
    client.views_publish(user_id=ALICE, view={"type": "home", "blocks": [section("hello")]})
    home = fake.home_view(ALICE)
    assert home is not None and home.blocks[0]["text"]["text"] == "hello"


# --- threads --------------------------------------------------------------------------------------


def test_thread_ts_without_a_parent_is_refused(client: WebClient, fake: FakeSlack) -> None:
    """A reply whose thread_ts names no message, or names a reply, in that channel gets thread_not_found."""
    parent = client.chat_postMessage(channel=OPS, text="parent")
    reply = client.chat_postMessage(channel=OPS, text="reply", thread_ts=parent["ts"])
    for bad in ("1600000000.000001", reply["ts"]):
        refused = api_error(partial(client.chat_postMessage, channel=OPS, text="x", thread_ts=bad))
        assert refused.response["error"] == "thread_not_found"
    refused = api_error(lambda: client.chat_postMessage(channel=DEPLOYS, text="x", thread_ts=parent["ts"]))
    assert refused.response["error"] == "thread_not_found"
    assert [m.thread_ts for m in fake.messages(OPS)] == [None, parent["ts"]]
    assert [m.text for m in fake.thread(OPS, parent["ts"])] == ["reply"]


# --- Block Kit limits -----------------------------------------------------------------------------


def _n_blocks(n: int) -> dict[str, Any]:
    return {"blocks": [section(f"b{i}") for i in range(n)]}


def _actions(n: int) -> dict[str, Any]:
    return {"blocks": [{"type": "actions", "elements": [button(action_id=f"a{i}") for i in range(n)]}]}


LIMIT_CASES: list[tuple[str, Callable[[int], dict[str, Any]], int, str, str]] = [
    ("blocks per message", _n_blocks, 50, "invalid_blocks", "/blocks"),
    ("section text", lambda n: {"blocks": [section("x" * n)]}, 3000, "invalid_blocks", "/blocks/0/text/text"),
    (
        "header text",
        lambda n: {"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * n}}]},
        150,
        "invalid_blocks",
        "/blocks/0/text/text",
    ),
    (
        "button text",
        lambda n: {"blocks": [{"type": "actions", "elements": [button("b" * n)]}]},
        75,
        "invalid_blocks",
        "/blocks/0/elements/0/text/text",
    ),
    (
        "button value",
        lambda n: {"blocks": [{"type": "actions", "elements": [button(value="v" * n)]}]},
        2000,
        "invalid_blocks",
        "/blocks/0/elements/0/value",
    ),
    (
        "button accessibility_label",
        lambda n: {"blocks": [{"type": "actions", "elements": [{**button(), "accessibility_label": "l" * n}]}]},
        75,
        "invalid_blocks",
        "/blocks/0/elements/0/accessibility_label",
    ),
    (
        "confirm dialog text",
        lambda n: {
            "blocks": [
                {
                    "type": "actions",
                    "elements": [
                        {
                            **button(),
                            "confirm": {
                                "title": {"type": "plain_text", "text": "Sure?"},
                                "text": {"type": "plain_text", "text": "t" * n},
                                "confirm": {"type": "plain_text", "text": "Yes"},
                                "deny": {"type": "plain_text", "text": "No"},
                            },
                        }
                    ],
                }
            ]
        },
        300,
        "invalid_blocks",
        "/blocks/0/elements/0/confirm/text/text",
    ),
    (
        "action_id",
        lambda n: {"blocks": [{"type": "actions", "elements": [button(action_id="a" * n)]}]},
        255,
        "invalid_blocks",
        "/blocks/0/elements/0/action_id",
    ),
    (
        "block_id",
        lambda n: {"blocks": [section("s", block_id="b" * n)]},
        255,
        "invalid_blocks",
        "/blocks/0/block_id",
    ),
    (
        "section fields",
        lambda n: {"blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": f"f{i}"} for i in range(n)]}]},
        10,
        "invalid_blocks",
        "/blocks/0/fields",
    ),
    (
        "field text",
        lambda n: {"blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * n}]}]},
        2000,
        "invalid_blocks",
        "/blocks/0/fields/0/text",
    ),
    ("actions elements", _actions, 25, "invalid_blocks", "/blocks/0/elements"),
    ("text argument", lambda n: {"text": "t" * n}, 40000, "msg_too_long", "/text"),
]


@pytest.mark.parametrize(
    ("make", "limit", "error", "pointer"), [c[1:] for c in LIMIT_CASES], ids=[c[0] for c in LIMIT_CASES]
)
def test_block_kit_limit_is_enforced(
    client: WebClient,
    fake: FakeSlack,
    make: Callable[[int], dict[str, Any]],
    limit: int,
    error: str,
    pointer: str,
) -> None:
    """A message exactly at a Block Kit limit posts; one past it is refused with a json-pointer detail."""
    fake.reset_rate_limits()
    client.chat_postMessage(channel=OPS, **{"text": "fallback", **make(limit)})
    refused = api_error(lambda: client.chat_postMessage(channel=OPS, **{"text": "fallback", **make(limit + 1)}))
    assert refused.response["error"] == error
    messages = refused.response["response_metadata"]["messages"]
    assert any(f"[json-pointer:{pointer}]" in m for m in messages), messages
    assert len(fake.messages(OPS)) == 1


def test_views_allow_100_blocks_but_not_101(client: WebClient, fake: FakeSlack) -> None:
    """A home tab may carry 100 blocks (twice a message's 50) and no more."""
    client.views_publish(user_id=ALICE, view={"type": "home", **_n_blocks(100)})
    refused = api_error(lambda: client.views_publish(user_id=ALICE, view={"type": "home", **_n_blocks(101)}))
    assert refused.response["error"] == "invalid_arguments"
    assert any("/view/blocks" in m for m in refused.response["response_metadata"]["messages"])
    home = fake.home_view(ALICE)
    assert home is not None and len(home.blocks) == 100


def test_blocks_sent_as_a_json_string_in_a_form_are_parsed(fake: FakeSlack) -> None:
    """Form posts carry blocks as a JSON string; the fake parses and validates them like Slack."""
    form = {"token": TOKEN, "channel": "#ops", "text": "fb", "blocks": json.dumps([section("from a form")])}
    body = requests.post(f"{fake.api_url}chat.postMessage", data=form, timeout=HTTP_TIMEOUT).json()
    assert body["ok"] and body["channel"] == OPS
    assert fake.messages(OPS)[0].blocks[0]["text"]["text"] == "from a form"
    form["blocks"] = json.dumps([section("x" * 3001)])
    assert (
        requests.post(f"{fake.api_url}chat.postMessage", data=form, timeout=HTTP_TIMEOUT).json()["error"]
        == "invalid_blocks"
    )


# --- triggers -------------------------------------------------------------------------------------


def test_trigger_id_works_once(client: WebClient, fake: FakeSlack) -> None:
    """views.open accepts a trigger_id the fake issued once, then exchanged_trigger_id; unknown is invalid."""
    trigger = fake.issue_trigger(ALICE)
    opened = client.views_open(trigger_id=trigger, view=modal())
    assert opened["view"]["callback_id"] == "why"
    assert (
        api_error(lambda: client.views_open(trigger_id=trigger, view=modal())).response["error"]
        == "exchanged_trigger_id"
    )
    assert (
        api_error(lambda: client.views_open(trigger_id="123.456.abc", view=modal())).response["error"]
        == "invalid_trigger_id"
    )
    assert [v.user for v in fake.views("modal")] == [ALICE]


def test_trigger_id_expires_after_three_seconds(client: WebClient, fake: FakeSlack, clock: Clock) -> None:
    """A trigger_id exchanged more than 3 s after it was issued is refused with expired_trigger_id."""
    fresh, stale = fake.issue_trigger(ALICE), fake.issue_trigger(ALICE)
    clock.advance(2.9)
    client.views_open(trigger_id=fresh, view=modal())
    clock.advance(0.2)
    assert (
        api_error(lambda: client.views_open(trigger_id=stale, view=modal())).response["error"] == "expired_trigger_id"
    )
    assert len(fake.views("modal")) == 1


# --- response_urls --------------------------------------------------------------------------------


def test_response_url_works_five_times_then_refuses(fake: FakeSlack) -> None:
    """The sixth POST to a response_url is refused with 404 and used_url, and changes nothing."""
    url = fake.issue_response_url(OPS, ALICE)
    statuses = [requests.post(url, json={"text": f"r{i}"}, timeout=HTTP_TIMEOUT).status_code for i in range(6)]
    assert statuses == [200] * 5 + [404]
    last = fake.response_posts(url)[-1]
    assert last.error == "used_url"
    assert [e.text for e in fake.ephemerals(OPS, ALICE)] == [f"r{i}" for i in range(5)]


def test_response_url_expires_after_thirty_minutes(fake: FakeSlack, clock: Clock) -> None:
    """A response_url used more than 30 minutes after it was issued answers 404 expired_url."""
    url = fake.issue_response_url(OPS, ALICE)
    clock.advance(30 * 60 + 1)
    reply = requests.post(url, json={"text": "late"}, timeout=HTTP_TIMEOUT)
    assert (reply.status_code, reply.json()["error"]) == (404, "expired_url")
    assert fake.ephemerals() == []


def test_response_url_response_types(client: WebClient, fake: FakeSlack) -> None:
    """A response_url posts in_channel or ephemeral, and replaces or deletes the original message."""
    original = client.chat_postMessage(channel=OPS, text="approve?", blocks=[section("approve?")])
    url = fake.issue_response_url(OPS, ALICE, message_ts=original["ts"])

    def post(body: dict[str, Any]) -> int:
        return requests.post(url, json=body, timeout=HTTP_TIMEOUT).status_code

    assert post({"response_type": "in_channel", "text": "for everyone"}) == 200
    assert post({"text": "just for alice"}) == 200
    assert post({"replace_original": True, "text": "approved"}) == 200
    edited = fake.message(OPS, original["ts"])
    assert edited is not None and (edited.text, edited.blocks, len(edited.edits)) == ("approved", [], 1)
    assert [m.text for m in fake.messages(OPS)] == ["approved", "for everyone"]
    assert [e.text for e in fake.ephemerals(user=ALICE)] == ["just for alice"]
    assert post({"delete_original": True}) == 200
    assert [m.text for m in fake.messages(OPS)] == ["for everyone"]
    assert post({"response_type": "in_channel", "blocks": [section("x" * 3001)]}) == 400


# --- rate limits and injected faults --------------------------------------------------------------


def test_burst_in_one_channel_is_rate_limited_while_another_is_not(fake: FakeSlack, clock: Clock) -> None:
    """Past the burst, a channel gets HTTP 429 with an integer Retry-After; other channels still post."""
    url, auth = f"{fake.api_url}chat.postMessage", {"Authorization": f"Bearer {TOKEN}"}
    replies = [
        requests.post(url, json={"channel": OPS, "text": f"m{i}"}, headers=auth, timeout=HTTP_TIMEOUT) for i in range(4)
    ]
    assert [r.status_code for r in replies] == [200, 200, 200, 429]
    assert replies[3].json() == {"ok": False, "error": "ratelimited"}
    assert int(replies[3].headers["Retry-After"]) >= 1
    other = requests.post(url, json={"channel": DEPLOYS, "text": "d"}, headers=auth, timeout=HTTP_TIMEOUT)
    assert other.status_code == 200
    clock.advance(1.0)
    again = requests.post(url, json={"channel": OPS, "text": "later"}, headers=auth, timeout=HTTP_TIMEOUT)
    assert again.status_code == 200
    assert [m.text for m in fake.messages(OPS)] == ["m0", "m1", "m2", "later"]
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [200, 200, 200, 429, 200, 200]


@pytest.mark.parametrize("status", [500, 503])
def test_injected_server_error_fails_then_clears(client: WebClient, fake: FakeSlack, status: int) -> None:
    """An injected 5xx fails exactly `times` calls to that method without posting, then Slack works again."""
    fault = fake.inject("chat.postMessage", status=status, times=2)
    for _ in range(2):
        assert api_error(lambda: client.chat_postMessage(channel=OPS, text="x")).response.status_code == status
    client.auth_test()
    client.chat_postMessage(channel=OPS, text="recovered")
    assert fault.hits == 2
    assert [m.text for m in fake.messages(OPS)] == ["recovered"]


def test_injected_429_carries_retry_after_and_slack_sdk_retries(fake: FakeSlack) -> None:
    """An injected 429 has Retry-After; slack_sdk's rate-limit retry handler waits and then succeeds."""
    fake.inject("chat.postMessage", status=429, retry_after=1, times=1)
    plain = WebClient(token=TOKEN, base_url=fake.api_url, timeout=HTTP_TIMEOUT)
    refused = api_error(lambda: plain.chat_postMessage(channel=OPS, text="x"))
    assert (refused.response.status_code, refused.response.headers["Retry-After"]) == (429, "1")
    fake.inject("chat.postMessage", status=429, retry_after=1, times=1)
    retrying = WebClient(
        token=TOKEN,
        base_url=fake.api_url,
        timeout=HTTP_TIMEOUT,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )
    started = time.monotonic()
    retrying.chat_postMessage(channel=OPS, text="after retry")
    assert time.monotonic() - started >= 1.0
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [429, 429, 200]


def test_injected_delay_slows_the_answer(client: WebClient, fake: FakeSlack) -> None:
    """An injected delay holds the answer back, then the call is served normally."""
    fake.inject("auth.test", delay=0.3)
    started = time.monotonic()
    assert client.auth_test()["user_id"] == fake.workspace.bot_user_id
    assert time.monotonic() - started >= 0.3


# --- slack_sdk round trip and transcript ----------------------------------------------------------


def test_webclient_round_trip(client: WebClient, fake: FakeSlack) -> None:
    """slack_sdk's WebClient posts, replies, edits, whispers and links; the fake records all of it."""
    assert client.auth_test()["team_id"] == fake.workspace.team_id
    parent = client.chat_postMessage(channel=OPS, text="deploy?", blocks=[section("deploy?")])
    assert parent["message"]["blocks"][0]["text"]["text"] == "deploy?"
    reply = client.chat_postMessage(channel=OPS, text="starting", thread_ts=parent["ts"])
    updated = client.chat_update(channel=OPS, ts=parent["ts"], text="deployed", blocks=[section("deployed")])
    assert updated["message"]["text"] == "deployed"
    whisper = client.chat_postEphemeral(channel=OPS, user=ALICE, text="psst")
    link = client.chat_getPermalink(channel=OPS, message_ts=reply["ts"])
    assert link["permalink"].endswith(f"?thread_ts={parent['ts']}&cid={OPS}")
    assert float(reply["ts"]) > float(parent["ts"])
    msgs = fake.messages(OPS)
    assert [(m.text, m.thread_ts, len(m.edits)) for m in msgs] == [
        ("deployed", None, 1),
        ("starting", parent["ts"], 0),
    ]
    assert fake.ephemerals(OPS)[0].ts == whisper["message_ts"]
    assert [c.method for c in fake.calls] == [
        "auth.test",
        "chat.postMessage",
        "chat.postMessage",
        "chat.update",
        "chat.postEphemeral",
        "chat.getPermalink",
    ]
    kinds = {c.method: c.content_type.split(";")[0] for c in fake.calls}
    assert kinds["chat.postMessage"] == "application/json"
    assert kinds["chat.getPermalink"] == "application/x-www-form-urlencoded"


def test_transcript_shows_latest_text_and_indented_replies(client: WebClient, fake: FakeSlack) -> None:
    """The transcript renders each parent's latest blocks, its replies indented, and ephemeral messages."""
    parent = client.chat_postMessage(
        channel=OPS,
        text="fb",
        blocks=[
            {"type": "header", "text": {"type": "plain_text", "text": "Approval needed"}},
            {
                "type": "actions",
                "elements": [button("Approve", action_id="ok"), button("Reject", action_id="no")],
            },
        ],
    )
    client.chat_postMessage(channel=OPS, text="alice approved", thread_ts=parent["ts"])
    client.chat_update(channel=OPS, ts=parent["ts"], text="fb", blocks=[section("*Approved*")])
    client.chat_postEphemeral(channel=OPS, user=ALICE, text="only you")
    text = fake.transcript("ops")
    lines = text.splitlines()
    assert lines[0] == f"#ops ({OPS})"
    assert any("@opsbot (edited 1x): *Approved*" in line for line in lines)
    assert "Approval needed" not in text
    assert any(line.startswith("    ↳ ") and "alice approved" in line for line in lines)
    assert any("[only @alice sees]: only you" in line for line in lines)


# --- the driver -----------------------------------------------------------------------------------


class Capture:
    """A stand-in bot endpoint that records requests and acks after an optional delay."""

    def __init__(self, delay: float = 0.0, reply: bytes = b"") -> None:
        self.delay, self.reply = delay, reply
        self.requests: list[tuple[Message, str]] = []
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                capture.requests.append((self.headers, body))
                time.sleep(capture.delay)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(capture.reply)))
                    self.end_headers()
                    self.wfile.write(capture.reply)
                except OSError:
                    pass  # the driver gave up waiting

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/slack/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def bot() -> Iterator[Capture]:
    capture = Capture()
    yield capture
    capture.close()


def test_driver_signature_is_accepted_by_slack_sdk_and_a_forged_one_is_not(fake: FakeSlack, bot: Capture) -> None:
    """SignatureVerifier accepts the driver's signature, and rejects a forged one and a stale timestamp."""
    driver = fake.driver(bot.url)
    driver.slash_command("/ops", "status", user="alice", channel="ops")
    driver.slash_command("/ops", "status", user="alice", channel="ops", signature="v0=" + "0" * 64)
    driver.slash_command("/ops", "status", user="alice", channel="ops", timestamp=int(time.time()) - 600)
    verifier = SignatureVerifier(SECRET)
    verdicts = [
        verifier.is_valid(body, h["X-Slack-Request-Timestamp"], h["X-Slack-Signature"]) for h, body in bot.requests
    ]
    assert verdicts == [True, False, False]
    assert sign(SECRET, 1, "x") != sign("other", 1, "x")


def test_driver_sends_slack_shaped_requests(fake: FakeSlack, bot: Capture, client: WebClient) -> None:
    """Slash commands are forms with Slack's fields; interactions are one `payload` field; events are JSON."""
    driver = fake.driver(bot.url)
    ack = driver.slash_command("/ops", "create replica", user="alice", channel="ops")
    headers, body = bot.requests[-1]
    form = {k: v[0] for k, v in parse_qs(body).items()}
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert {
        "token",
        "team_id",
        "team_domain",
        "channel_id",
        "channel_name",
        "user_id",
        "user_name",
        "command",
        "text",
        "api_app_id",
        "response_url",
        "trigger_id",
    } <= form.keys()
    assert (form["command"], form["text"], form["user_id"], form["channel_name"]) == (
        "/ops",
        "create replica",
        ALICE,
        "ops",
    )
    assert form["response_url"] == ack.response_url and form["response_url"].startswith(fake.url)
    msg = client.chat_postMessage(
        channel=OPS,
        text="fb",
        blocks=[
            {
                "type": "actions",
                "block_id": "decide",
                "elements": [button("Approve", action_id="approve", value="7")],
            }
        ],
    )
    driver.click(OPS, msg["ts"], "approve", user="alice")
    payload = json.loads(parse_qs(bot.requests[-1][1])["payload"][0])
    assert payload["type"] == "block_actions" and payload["message"]["ts"] == msg["ts"]
    assert payload["actions"][0] | {"action_ts": "-"} == {
        "action_id": "approve",
        "block_id": "decide",
        "value": "7",
        "type": "button",
        "action_ts": "-",
        "text": {"type": "plain_text", "text": "Approve"},
    }
    assert payload["user"] == {
        "id": ALICE,
        "username": "alice",
        "name": "alice",
        "team_id": fake.workspace.team_id,
    }
    with pytest.raises(LookupError):
        driver.click(OPS, msg["ts"], "no-such-button", user="alice")
    client.views_open(trigger_id=payload["trigger_id"], view=modal())
    view = fake.views("modal")[0]
    driver.submit_view(view.id, {"reason": {"text": "load"}})
    submitted = json.loads(parse_qs(bot.requests[-1][1])["payload"][0])
    assert submitted["type"] == "view_submission" and submitted["view"]["callback_id"] == "why"
    assert submitted["view"]["state"]["values"] == {"reason": {"text": {"type": "plain_text_input", "value": "load"}}}
    assert fake.views("modal")[0].closed
    driver.app_home_opened("alice")
    envelope = json.loads(bot.requests[-1][1])
    assert (envelope["type"], envelope["event"]["type"], envelope["event"]["user"]) == (
        "event_callback",
        "app_home_opened",
        ALICE,
    )


def test_driver_flags_acks_slower_than_the_deadline(fake: FakeSlack, bot: Capture) -> None:
    """An ack later than the deadline is listed in slow_acks and fails assert_acks_fast; no ack at all too."""
    slow_bot = Capture(delay=0.3)
    try:
        driver = SlackDriver(fake, slow_bot.url, ack_deadline=0.2, timeout=2.0)
        ack = driver.slash_command("/ops", "", user="alice", channel="ops")
        assert ack.status == 200 and ack.elapsed >= 0.3 and ack.slow
        timed_out = SlackDriver(fake, slow_bot.url, timeout=0.1).app_home_opened("alice")
        assert timed_out.error is not None and timed_out.slow
    finally:
        slow_bot.close()
    assert driver.slow_acks == [ack]
    with pytest.raises(AssertionError, match="too slowly"):
        driver.assert_acks_fast()
    fast = SlackDriver(fake, bot.url)
    fast.slash_command("/ops", "", user="alice", channel="ops")
    fast.assert_acks_fast()


# --- a real Bolt app against the fake -------------------------------------------------------------


def test_a_bolt_app_accepts_the_drivers_requests_and_talks_back(fake: FakeSlack) -> None:
    """Bolt verifies the driver's signatures, parses its payloads, and its replies land in the fake."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from slack_bolt import App
    from slack_bolt.adapter.wsgi import SlackRequestHandler

    app = App(client=WebClient(token=TOKEN, base_url=fake.api_url, timeout=HTTP_TIMEOUT), signing_secret=SECRET)
    approve = {"type": "actions", "elements": [button("Approve", action_id="approve", value="r-1")]}

    @app.command("/ops")
    def command(ack: Any, command: dict[str, Any], say: Any, client: WebClient) -> None:
        ack()
        say(text=f"request {command['text']}", blocks=[section(f"request {command['text']}"), approve])
        client.views_open(trigger_id=command["trigger_id"], view=modal())

    @app.action("approve")
    def on_approve(ack: Any, body: dict[str, Any], respond: Any) -> None:
        ack()
        respond(
            replace_original=True,
            text=f"approved {body['actions'][0]['value']} by {body['user']['username']}",
        )

    @app.view("why")
    def on_submit(ack: Any, view: dict[str, Any], client: WebClient) -> None:
        ack()
        client.chat_postMessage(channel=OPS, text=f"reason: {view['state']['values']['reason']['text']['value']}")

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, SlackRequestHandler(app), handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        driver = fake.driver(f"http://127.0.0.1:{server.server_port}/slack/events")
        assert driver.slash_command("/ops", "replica", user="alice", channel="ops", signature="v0=bad").status == 401
        assert driver.slash_command("/ops", "replica", user="alice", channel="ops").status == 200
        request = fake.wait_for_message(OPS, "request replica")
        modal_view = fake.wait_for(lambda: fake.views("modal"))[0]
        assert driver.click(OPS, request.ts, "approve", user="alice").status == 200
        assert fake.wait_for_message(OPS, "approved r-1 by alice").ts == request.ts
        assert driver.submit_view(modal_view.id, {"reason": {"text": "load"}}).status == 200
        fake.wait_for_message(OPS, "reason: load")
        driver.assert_acks_fast()
    finally:
        server.shutdown()
        server.server_close()
    assert [m.text for m in fake.messages(OPS)] == ["approved r-1 by alice", "reason: load"]
