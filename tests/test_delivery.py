"""The outbox drain against the fake Slack: no duplicates across processes, pacing, Retry-After, coalescing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.blocks.kit import section
from bot.delivery import OutboxWorker
from fakeslack import FakeSlack
from store.db import make_engine
from store.slack import EDIT_OF, LINK_PARENT, PLAN_URL, SlackStore
from store.sql import SqlStore
from workflows.model import IntentId, NewIntent
from workflows.runtime import SystemClock

TOKEN = "xoxb-delivery-test-000000"
CHANNEL = "C0OPS0001"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(TOKEN, "s", channels={CHANNEL: "ops"}) as f:
        yield f


@pytest.fixture
def slack_store(db_url: str) -> Iterator[SlackStore]:
    engine = make_engine(db_url)
    yield SlackStore(engine)
    engine.dispose()


def worker(store: SlackStore, fake: FakeSlack, **kw: Any) -> OutboxWorker:
    client = WebClient(token=TOKEN, base_url=fake.api_url, timeout=5, retry_handlers=[])
    return OutboxWorker(store, client, SystemClock(), **kw)


def intent(store: SlackStore, n: int = 1) -> str:
    clock = SystemClock()
    with SqlStore(store.engine).transaction() as tx:
        tx.insert_intent(NewIntent(IntentId(f"i{n}"), "w", "prod", {}, "u", f"k{n}", {}, "h", clock.now()))
    return f"i{n}"


def test_two_drains_at_once_post_each_message_once(slack_store: SlackStore, fake: FakeSlack) -> None:
    """Two processes draining the same outbox never send the same message twice."""
    now = SystemClock().now()
    slack_store.enqueue([(f"m{i}", None, CHANNEL, "post", {"text": f"message {i}"}) for i in range(12)], now)
    workers = [worker(slack_store, fake, burst=100, rate=100.0) for _ in range(2)]
    barrier = threading.Barrier(2)

    def drain(w: OutboxWorker) -> None:
        barrier.wait()
        w.drain_until_idle(timeout=20)

    threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    texts = [m.text for m in fake.messages(CHANNEL)]
    assert sorted(texts) == sorted(f"message {i}" for i in range(12))


def test_retry_after_is_honoured_and_nothing_is_lost(slack_store: SlackStore, fake: FakeSlack) -> None:
    """A 429 defers the channel for Retry-After seconds; the message is delivered afterwards, once."""
    fake.inject(method="chat.postMessage", status=429, retry_after=1, times=1)
    slack_store.enqueue([("a", None, CHANNEL, "post", {"text": "hello"})], SystemClock().now())
    w = worker(slack_store, fake)
    assert w.drain_once() == 0
    assert slack_store.pending_count() == 1
    w.drain_until_idle(timeout=10)
    assert [m.text for m in fake.messages(CHANNEL)] == ["hello"]
    assert w.stats.retried == 1


def test_parent_updates_are_coalesced_to_the_latest(slack_store: SlackStore, fake: FakeSlack) -> None:
    """Several queued updates of one plan message become one chat.update with the newest content."""
    intent_id = intent(slack_store)
    now = SystemClock().now()
    slack_store.enqueue([("p", intent_id, CHANNEL, "post_parent", {"text": "v1"})], now, thread=(intent_id, CHANNEL))
    w = worker(slack_store, fake, burst=10, rate=10.0)
    w.drain_until_idle()
    slack_store.enqueue([(f"u{v}", intent_id, CHANNEL, "update_parent", {"text": f"v{v}"}) for v in (2, 3, 4)], now)
    w.drain_until_idle()
    [parent] = fake.messages(CHANNEL)
    assert parent.text == "v4" and len(fake.calls_to("chat.update")) == 1
    assert w.stats.coalesced == 2


def test_pacing_keeps_a_channel_near_one_message_per_second(slack_store: SlackStore, fake: FakeSlack) -> None:
    """After the burst, the drain holds back instead of drawing 429s from Slack."""
    slack_store.enqueue([(f"m{i}", None, CHANNEL, "post", {"text": str(i)}) for i in range(6)], SystemClock().now())
    w = worker(slack_store, fake, burst=3, rate=1.0)
    assert w.drain_once() == 3
    w.drain_until_idle(timeout=15)
    assert len(fake.messages(CHANNEL)) == 6
    assert not [c for c in fake.calls if c.status == 429]


def test_a_payload_slack_rejects_is_marked_dead_not_retried_forever(slack_store: SlackStore, fake: FakeSlack) -> None:
    """invalid_blocks is permanent: recorded with its error, and the channel keeps flowing."""
    bad = {"text": "x", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}}]}
    slack_store.enqueue(
        [("bad", None, CHANNEL, "post", bad), ("good", None, CHANNEL, "post", {"text": "ok"})], SystemClock().now()
    )
    w = worker(slack_store, fake)
    w.drain_until_idle()
    assert [m.text for m in fake.messages(CHANNEL)] == ["ok"]
    assert w.stats.dead == 1 and w.stats.errors == ["invalid_blocks"]


def test_thread_replies_wait_for_their_parent(slack_store: SlackStore, fake: FakeSlack) -> None:
    """A reply queued with its parent is posted after the parent, in its thread."""
    intent_id = intent(slack_store)
    now = SystemClock().now()
    slack_store.enqueue(
        [
            ("p", intent_id, CHANNEL, "post_parent", {"text": "plan"}),
            ("r1", intent_id, CHANNEL, "thread_reply", {"text": "step one"}),
            ("r2", intent_id, CHANNEL, "thread_reply", {"text": "step two"}),
        ],
        now,
        thread=(intent_id, CHANNEL),
    )
    worker(slack_store, fake).drain_until_idle()
    parent, one, two = fake.messages(CHANNEL)
    assert parent.text == "plan" and one.thread_ts == parent.ts == two.thread_ts
    assert (one.text, two.text) == ("step one", "step two")


def test_an_older_update_held_back_never_overwrites_a_newer_one(slack_store: SlackStore, fake: FakeSlack) -> None:
    """An update deferred by a 5xx is superseded once a newer update of the same message is delivered."""
    intent_id = intent(slack_store)
    now = SystemClock().now()
    slack_store.enqueue([("p", intent_id, CHANNEL, "post_parent", {"text": "v1"})], now, thread=(intent_id, CHANNEL))
    w = worker(slack_store, fake, burst=10, rate=10.0)
    w.drain_until_idle()
    fake.inject(method="chat.update", status=500, times=1)
    slack_store.enqueue([("u2", intent_id, CHANNEL, "update_parent", {"text": "v2"})], now)
    w.drain_once()  # v2 fails and waits for its retry
    slack_store.enqueue([("u3", intent_id, CHANNEL, "update_parent", {"text": "v3"})], SystemClock().now())
    w.drain_until_idle(timeout=10)
    [parent] = fake.messages(CHANNEL)
    assert parent.text == "v3"
    assert [c.args.get("text") for c in fake.calls_to("chat.update") if c.status == 200] == ["v3"]


def test_a_reply_deferred_by_a_5xx_is_never_overtaken_by_the_next_one(slack_store: SlackStore, fake: FakeSlack) -> None:
    """A thread keeps its order through a failure: the reply after one waiting for its retry waits too."""
    intent_id = intent(slack_store)
    now = SystemClock().now()
    slack_store.enqueue([("p", intent_id, CHANNEL, "post_parent", {"text": "plan"})], now, thread=(intent_id, CHANNEL))
    w = worker(slack_store, fake, burst=10, rate=10.0)
    w.drain_until_idle()
    fake.inject(method="chat.postMessage", status=503, times=1)
    slack_store.enqueue([("r1", intent_id, CHANNEL, "thread_reply", {"text": "step one"})], now)
    w.drain_once()  # r1 fails and waits for its retry
    slack_store.enqueue([("r2", intent_id, CHANNEL, "thread_reply", {"text": "step two"})], SystemClock().now())
    w.drain_once()  # r2 is due, r1 is not: r2 must wait behind r1
    w.drain_until_idle(timeout=15)
    replies = [m.text for m in fake.messages(CHANNEL) if m.thread_ts and m.ts != m.thread_ts]
    assert "\n".join(replies).splitlines() == ["step one", "step two"]


def test_two_processes_keep_one_thread_in_order(slack_store: SlackStore, fake: FakeSlack) -> None:
    """What one process has claimed of a thread holds back what another would send of the same thread."""
    intent_id = intent(slack_store)
    now = SystemClock().now()
    slack_store.enqueue([("p", intent_id, CHANNEL, "post_parent", {"text": "plan"})], now, thread=(intent_id, CHANNEL))
    a, b = worker(slack_store, fake, burst=10, rate=10.0), worker(slack_store, fake, burst=10, rate=10.0)
    a.drain_until_idle()
    slack_store.enqueue([("r1", intent_id, CHANNEL, "thread_reply", {"text": "step one"})], now)
    taken = slack_store.claim(slack_store.due(now), now, now + timedelta(seconds=60))  # process A, mid-pass
    assert [i.dedupe_key for i in taken] == ["r1"]
    slack_store.enqueue([("r2", intent_id, CHANNEL, "thread_reply", {"text": "step two"})], SystemClock().now())
    assert slack_store.due(SystemClock().now()) == [], "r2 waits while r1 is in another process's hands"
    b.drain_once()
    assert not [m for m in fake.messages(CHANNEL) if m.thread_ts and m.ts != m.thread_ts]


def test_an_edit_waits_for_the_post_it_changes_and_only_the_newest_lands(
    slack_store: SlackStore, fake: FakeSlack
) -> None:
    """An earlier post edited by its key: held until that post is sent, older queued edits superseded."""
    intent_id = intent(slack_store)
    now = SystemClock().now()
    slack_store.enqueue([("p", intent_id, CHANNEL, "post_parent", {"text": "plan"})], now, thread=(intent_id, CHANNEL))
    fake.inject(method="chat.postMessage", status=503, times=2)  # the plan, then its retry... the reply waits
    slack_store.enqueue(
        [
            ("r", intent_id, CHANNEL, "thread_reply", {"text": "failed: retry?"}),
            ("e1", intent_id, CHANNEL, "edit", {"text": "failed (v2)", EDIT_OF: "r"}),
            ("e2", intent_id, CHANNEL, "edit", {"text": "superseded", EDIT_OF: "r"}),
        ],
        now,
    )
    w = worker(slack_store, fake, burst=10, rate=10.0)
    w.drain_until_idle(timeout=15)
    parent, reply = fake.messages(CHANNEL)
    assert reply.thread_ts == parent.ts and reply.text == "superseded"
    assert [c.args.get("text") for c in fake.calls_to("chat.update") if c.ok] == ["superseded"]
    assert slack_store.pending_count() == 0
    [edit] = [i for i in slack_store.sent() if i.dedupe_key == "e2"]
    assert edit.attempts == 1, "waiting for its post was not counted as a failed attempt (no growing backoff)"


def test_an_edit_of_a_post_slack_refused_is_dropped(slack_store: SlackStore, fake: FakeSlack) -> None:
    """A post Slack refused for good is never edited: the edit ends dead instead of waiting for ever."""
    now = SystemClock().now()
    bad = {"text": "x", "blocks": [{"type": "nonsense"}]}
    slack_store.enqueue([("bad", None, CHANNEL, "post", bad)], now)
    slack_store.enqueue([("fix", None, CHANNEL, "edit", {"text": "y", EDIT_OF: "bad"})], now)
    w = worker(slack_store, fake)
    w.drain_until_idle(timeout=10)
    assert slack_store.pending_count() == 0 and w.stats.dead == 2 and not fake.calls_to("chat.update")


def test_a_link_to_the_plan_message_is_its_permalink(slack_store: SlackStore, fake: FakeSlack) -> None:
    """A message elsewhere that links an intent's plan message gets that message's permalink once it exists."""
    fake.add_channel("C0INCIDENT", "incident")
    intent_id = intent(slack_store)
    now = SystemClock().now()
    notice = {"text": "see plan", "blocks": [section(f"<{PLAN_URL}|the plan>")], LINK_PARENT: intent_id}
    slack_store.enqueue(
        [("n", intent_id, "C0INCIDENT", "post", notice), ("p", intent_id, CHANNEL, "post_parent", {"text": "plan"})],
        now,
        thread=(intent_id, CHANNEL),
    )
    worker(slack_store, fake, burst=10, rate=10.0).drain_until_idle(timeout=15)
    [parent] = fake.messages(CHANNEL)
    [posted] = fake.messages("C0INCIDENT")
    permalink = fake.calls_to("chat.getPermalink")[0].body["permalink"]
    assert parent.ts.replace(".", "") in permalink and f"<{permalink}|the plan>" in str(posted.blocks)
    assert PLAN_URL not in str(posted.blocks) and LINK_PARENT not in str(fake.calls_to("chat.postMessage")[-1].args)


def test_what_hangs_under_a_plan_message_slack_refused_is_dropped(slack_store: SlackStore, fake: FakeSlack) -> None:
    """A plan message Slack refused for good: its replies, its updates and links to it end dead, not waiting."""
    intent_id = intent(slack_store)
    now = SystemClock().now()
    bad = {"text": "plan", "blocks": [{"type": "nonsense"}]}
    slack_store.enqueue(
        [
            (f"{intent_id}:parent", intent_id, CHANNEL, "post_parent", bad),
            ("r", intent_id, CHANNEL, "thread_reply", {"text": "failed"}),
            ("u", intent_id, CHANNEL, "update_parent", {"text": "plan v2"}),
            ("n", intent_id, CHANNEL, "post", {"text": f"<{PLAN_URL}|plan>", LINK_PARENT: intent_id}),
        ],
        now,
        thread=(intent_id, CHANNEL),
    )
    w = worker(slack_store, fake, burst=10, rate=10.0)
    w.drain_until_idle(timeout=10)
    assert slack_store.pending_count() == 0 and w.stats.dead == 4 and not fake.messages(CHANNEL)


def test_one_replica_at_a_time_projects_an_intent(pg_url: str) -> None:
    """Two replicas' projections of one intent never overlap (a session advisory lock on PostgreSQL): the edits of
    one message are queued in the order the intent moved. Another intent is not held up."""
    engines = [make_engine(pg_url), make_engine(pg_url)]
    first, second = (SlackStore(e) for e in engines)
    entered = threading.Event()
    try:
        with first.projecting("i1"):

            def other() -> None:
                with second.projecting("i1"):
                    entered.set()

            waiter = threading.Thread(target=other)
            waiter.start()
            with second.projecting("i2"):
                pass  # a different intent: not blocked
            assert not entered.wait(0.5), "the second replica got in while the first projected"
        assert entered.wait(5), "released at the end of the first projection"
        waiter.join(5)
    finally:
        for e in engines:
            e.dispose()
