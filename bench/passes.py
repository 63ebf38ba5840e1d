"""One pass of each periodic job with 10k, 100k and 1M intents in the store: the cost must follow the work, not N.

    python bench/passes.py [--sizes 10000,100000,1000000] [--runs 7] [--batch 20] [--pg URL]

Without --pg it uses OPSBOT_TEST_DATABASE_URL, else postgresql+psycopg://postgres@127.0.0.1:5432/test; the bench
creates a throwaway database on that server and drops it afterwards.

The store is filled by cloning real intents server-side. Four templates are made through the real code (the
catalog's `rds.snapshot` over the conformance kit's scripted AWS, the Slack surface, the projector and the outbox
drain against a stub Web API client): one succeeded, one waiting for approval, one converging, one approved.
Each template's rows (intent, steps, approvals, audit events, outbox, Slack thread, locks) are copied with
`INSERT ... SELECT ... FROM generate_series`, ids and instance names rewritten, timestamps shifted (one intent every
2.5 s going back from now: a million span 29 days), growing 10k -> 100k -> 1M in place. Of the intents,
98.8% succeeded (threads settled), 1% wait for approval and 0.2% are converging (threads not settled, projected
up to date; converging ones due in hours). Copied plans keep the template's plan hash and copied audit events get
placeholder hashes: nothing timed here re-hashes a plan or walks the audit chain.

Each timed run hands every pass the same due or changed work (`--batch`), so a pass that grows with N reads what
it should not:

* claim     `Executor.claim(batch)`: `batch` intents approved just now (each with its own resource lock)
* reconcile `Reconciler.reconcile_due()`: `batch` converging intents come due (their probe: the scripted AWS)
* project   `Projector.sync()`: the claimed intents marked as moved, plus one sweep page of unsettled threads
* drain     `OutboxWorker.drain_once()` against a stub client: what that projection queued
* digest    `build_digest(...)`: open intents by status, those ended in the period (no digest was posted
            before, so the last day: about 34,500 intents from 100k on) and the first page of what needs attention
* metrics   one scrape's store gauges (`StoreCollector`): open intents and those ended in the last 24 hours by
            workflow, environment and status, the outbox's depth and age, the audit chain's length

Prints medians and spread (min..max) per pass and size and the ratio largest / smallest size, then shows that a
new intent's thread is projected (and delivered) in the very next pass while older unsettled threads wait.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any, cast

import sqlalchemy as sa
import structlog
from slack_sdk import WebClient

from bot.blocks.digest import Digest
from bot.delivery import OutboxWorker
from bot.digest import build_digest
from bot.projector import Projector
from bot.services import SlackServices
from bot.surface import Command, CommandKind, SlackSurface
from conformance.scripted_aws import add_instance
from conformance.world import ScriptedAdapters, ScriptedWorld
from store.db import make_engine
from store.metrics import StoreCollector
from store.migrate import upgrade
from store.signals import Signals
from store.slack import SlackStore
from store.sql import SqlStore
from workflows.catalog import build_registry
from workflows.config import DigestConfig, parse_config
from workflows.deps import Runtime
from workflows.executor import Executor
from workflows.model import IntentStatus
from workflows.ports import CHANGED
from workflows.reconciler import Reconciler
from workflows.service import OpsService

OPS, DIGEST = "C0OPS0001", "C0DIGEST"
WORKFLOW = "rds.snapshot"
CONFIG: dict[str, Any] = {
    "environments": {"prod": {"aws_region": "us-east-1"}},
    "roles": {"dba": ["alice"], "dba-lead": ["bob"]},
    "policies": {WORKFLOW: {"request": ["dba"], "approve": ["dba-lead"], "approvals": 1}},
    "digests": [{"channel": DIGEST, "cron": "0 9 * * *", "timezone": "UTC", "stale_approval_minutes": 30}],
}
PASSES = ("claim", "reconcile", "project", "drain", "digest", "metrics")
ARMED = 10**9  # clone numbers from here on are the intents approved during the runs (fill numbers stay below)
HISTORY_BASE, HISTORY_CEILING = 1_000, 50_000_000  # audit seqs of the filled history: up to ten per intent
STALE_FOR_DEMO = 1000


class StubSlack:
    """The Web API calls the drain and the digest make, answered at once (the bench times the store, not Slack).

    The method names are slack_sdk's."""

    def __init__(self) -> None:
        self._ts = count(1)

    def chat_postMessage(self, *, channel: str, **_: Any) -> dict[str, Any]:
        return {"ok": True, "channel": channel, "ts": f"{1_800_000_000 + next(self._ts)}.000100"}

    def chat_update(self, *, channel: str, ts: str, **_: Any) -> dict[str, Any]:
        return {"ok": True, "channel": channel, "ts": ts}

    def chat_getPermalink(self, *, channel: str, message_ts: str) -> dict[str, Any]:
        return {"ok": True, "permalink": f"https://bench.slack.test/archives/{channel}/p{message_ts.replace('.', '')}"}

    def conversations_history(self, **_: Any) -> dict[str, Any]:
        return {"ok": True, "messages": []}


@dataclass
class Rig:
    """The objects the worker wires (opsbot.wiring, opsbot.worker), built in-process over one database."""

    engine: sa.Engine
    admin: sa.Engine  # no statement timeout: bulk fills and arming
    world: ScriptedWorld
    rt: Runtime
    ops: OpsService
    executor: Executor
    reconciler: Reconciler
    slack: SlackServices
    digest: DigestConfig

    @classmethod
    def build(cls, url: str, batch: int) -> Rig:
        engine = make_engine(url)
        store = SqlStore(engine, Signals())
        world = ScriptedWorld()
        rt = Runtime(store, build_registry(), parse_config(CONFIG), ScriptedAdapters(world))
        ops = OpsService(rt)
        client = cast(WebClient, StubSlack())
        slack_store = SlackStore(engine, store.signals)
        projector = Projector(ops, slack_store, rt.registry)
        outbox = OutboxWorker(slack_store, client, rt.clock, burst=100_000, rate=100_000.0)  # pacing is not timed
        wake = threading.Event()
        surface = SlackSurface(ops, slack_store, projector, wake.set)
        slack = SlackServices(ops, client, slack_store, projector, outbox, surface, wake, "bench")
        store.signals.subscribe(CHANGED, projector.mark)  # as opsbot.worker does
        admin = sa.create_engine(
            url, connect_args={"options": "-c statement_timeout=0 -c synchronous_commit=off -c work_mem=64MB"}
        )
        return cls(
            engine,
            admin,
            world,
            rt,
            ops,
            Executor(rt, "bench", batch),
            Reconciler(rt),
            slack,
            rt.config.digests[0],
        )

    def settle(self, intent_id: str) -> None:
        """Project one intent and deliver everything queued."""
        self.slack.projector.sync_one(intent_id)
        self.slack.outbox.drain_until_idle(timeout=60)

    def request(self, instance: str) -> str:
        """`/ops rds.snapshot instance=<instance>` as the Slack surface takes it: the intent and its plan message."""
        add_instance(self.world, instance)
        before = {i.id for i in self.ops.list(IntentStatus.PENDING_APPROVAL, limit=10)}
        command = Command(CommandKind.REQUEST, WORKFLOW, {"instance": instance}, "prod")
        self.slack.surface.request(command, "alice", OPS)
        [intent] = [i for i in self.ops.list(IntentStatus.PENDING_APPROVAL, limit=10) if i.id not in before]
        return intent.id

    def approve(self, intent_id: str) -> None:
        self.ops.approve(intent_id, "bob", self.ops.get(intent_id).plan_hash)


# templates ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A real intent whose rows are cloned; `instance` and `id` are rewritten in every copied text."""

    id: str
    instance: str
    created_at: datetime
    parent_ts: str


def make_templates(rig: Rig) -> dict[str, Template]:
    """One intent in each shape the fill needs, made by the real code paths."""
    ids: dict[str, str] = {}
    ids["succeeded"] = rig.request("tplsucceeded")
    rig.approve(ids["succeeded"])
    rig.executor.run_until_idle()
    rig.world.seed(lambda state: state.__setitem__("converge_after", 10**9))  # snapshots stay "creating"
    ids["converging"] = rig.request("tplconverging")
    rig.approve(ids["converging"])
    rig.executor.run_until_idle()
    ids["approved"] = rig.request("tplapproved")
    rig.approve(ids["approved"])
    ids["pending"] = rig.request("tplpending")
    for intent_id in ids.values():
        rig.settle(intent_id)
    templates = {}
    for kind, intent_id in ids.items():
        intent = rig.ops.get(intent_id)
        thread = rig.slack.store.thread(intent_id)
        assert thread is not None and thread.parent_ts, kind
        assert thread.projected_version == intent.version and thread.settled == intent.status.terminal, kind
        expected = {
            "succeeded": IntentStatus.SUCCEEDED,
            "converging": IntentStatus.CONVERGING,
            "approved": IntentStatus.APPROVED,
            "pending": IntentStatus.PENDING_APPROVAL,
        }[kind]
        assert intent.status is expected, (kind, intent.status, intent.status_reason)
        templates[kind] = Template(intent_id, f"tpl{kind}", intent.created_at, thread.parent_ts)
    with rig.admin.begin() as conn:  # the templates themselves are never due: the runs hand out the due work
        conn.execute(
            sa.text("UPDATE intents SET next_check_at = now() + interval '100 years' WHERE id = ANY(:ids)"),
            {"ids": [ids["approved"], ids["converging"]]},
        )
    return templates


# cloning ------------------------------------------------------------------------------------------


def _sub(expr: str) -> str:
    """`expr` (text) with the template's intent id and instance name replaced by the clone's."""
    return f"replace(replace({expr}, :tid, m.id), :tinst, m.inst)"


_MAP = """
CREATE TEMP TABLE bench_map ON COMMIT DROP AS
SELECT g, id, 'bench-' || id AS inst, (1600000000 + g)::text || '.000200' AS parent_ts,
       created - CAST(:tcreated AS timestamptz) AS d, next_check
FROM (SELECT g, substr(md5('bench:' || g), 1, 16) AS id, created, next_check FROM ({rows}) r) s
"""
_CLONES = (
    f"""
INSERT INTO intents (id, workflow, environment, params, requester, idempotency_key, plan, plan_hash, status, version,
    mode, attempts, lease_owner, lease_token, lease_expires_at, next_check_at, status_reason, last_error, created_at,
    updated_at, started_at, reauthorize)
SELECT m.id, t.workflow, t.environment, {_sub("t.params::text")}::json, t.requester, 'bench:' || m.g,
    {_sub("t.plan::text")}::json, t.plan_hash, t.status, t.version, t.mode, t.attempts, t.lease_owner, t.lease_token,
    t.lease_expires_at + m.d, coalesce(m.next_check, t.next_check_at + m.d), {_sub("t.status_reason")},
    {_sub("t.last_error")}, t.created_at + m.d, t.updated_at + m.d, t.started_at + m.d, t.reauthorize
FROM bench_map m, intents t WHERE t.id = :tid
""",
    f"""
INSERT INTO step_checkpoints (intent_id, seq, name, status, idempotency_token, external_ids, output, error, attempts,
    started_at, finished_at)
SELECT m.id, s.seq, s.name, s.status, {_sub("s.idempotency_token")}, {_sub("s.external_ids::text")}::json,
    {_sub("s.output::text")}::json, {_sub("s.error")}, s.attempts, s.started_at + m.d, s.finished_at + m.d
FROM bench_map m, step_checkpoints s WHERE s.intent_id = :tid
""",
    """
INSERT INTO approvals (intent_id, actor, plan_hash, decision, reason, created_at, expires_at)
SELECT m.id, a.actor, a.plan_hash, a.decision, a.reason, a.created_at + m.d, a.expires_at + m.d
FROM bench_map m, approvals a WHERE a.intent_id = :tid
""",
    # History is numbered below HISTORY_CEILING (room for ten events per intent), what the runs append above it.
    f"""
INSERT INTO audit_events (seq, intent_id, kind, actor, data, created_at, prev_hash, hash)
SELECT seq, intent_id, kind, actor, data, created_at, '', encode(sha256(convert_to('bench:' || seq, 'UTF8')), 'hex')
FROM (
    SELECT CASE WHEN :history THEN {HISTORY_BASE} + m.g * 10 + row_number() OVER (PARTITION BY m.g ORDER BY e.seq)
                ELSE (SELECT max(seq) FROM audit_events) + row_number() OVER (ORDER BY m.g, e.seq) END AS seq,
        m.id AS intent_id, e.kind, e.actor, {_sub("e.data")} AS data, e.created_at + m.d AS created_at
    FROM bench_map m, audit_events e WHERE e.intent_id = :tid
) c
""",
    # Of the delivered messages, the plan message and its last update, text only: the blocks are never read again,
    # and the whole history of every thread would be gigabytes here.
    f"""
INSERT INTO slack_outbox (dedupe_key, intent_id, channel, kind, payload, status, attempts, next_attempt_at, created_at,
    sent_at, ts, last_error)
SELECT {_sub("o.dedupe_key")}, m.id, o.channel, o.kind,
    CASE WHEN o.status = 'pending' THEN {_sub("o.payload::text")}::json
         ELSE json_build_object('text', {_sub("o.payload->>'text'")}) END,
    o.status, o.attempts, o.next_attempt_at + m.d, o.created_at + m.d, o.sent_at + m.d,
    CASE WHEN o.ts = :tparent THEN m.parent_ts ELSE o.ts END, o.last_error
FROM bench_map m, slack_outbox o WHERE o.intent_id = :tid AND (o.status = 'pending' OR o.kind = 'post_parent'
    OR o.id = (SELECT max(id) FROM slack_outbox WHERE intent_id = :tid AND kind = 'update_parent'))
""",
    """
INSERT INTO slack_threads (intent_id, channel, parent_ts, projected_version, projected_steps, settled, created_at)
SELECT m.id, h.channel, m.parent_ts, h.projected_version, h.projected_steps, h.settled, h.created_at + m.d
FROM bench_map m, slack_threads h WHERE h.intent_id = :tid
""",
    f"""
INSERT INTO resource_locks (resource, intent_id, acquired_at)
SELECT {_sub("r.resource")}, m.id, r.acquired_at + m.d FROM bench_map m, resource_locks r WHERE r.intent_id = :tid
""",
)


def clone(conn: sa.Connection, template: Template, rows: str, history: bool, **params: Any) -> list[str]:
    """Copy `template` once per row of `rows` (columns g, created, next_check); returns the new intent ids.

    `history` numbers the copied audit events below HISTORY_CEILING (chunks then fill in parallel); otherwise
    they are appended at the head, as the runs do."""
    binds = {"tid": template.id, "tinst": template.instance, "tcreated": template.created_at, "history": history}
    binds |= params
    conn.execute(sa.text(_MAP.format(rows=rows)), binds)
    for statement in _CLONES:
        conn.execute(sa.text(statement), binds | {"tparent": template.parent_ts})
    ids = [str(i) for i in conn.execute(sa.text("SELECT id FROM bench_map ORDER BY g")).scalars()]
    conn.execute(sa.text("DROP TABLE bench_map"))
    return ids


EVERY_SECONDS = 2.5  # intent g was requested g * 2.5 s before the bench started: a million span 29 days
_HISTORY = f"""SELECT g, CAST(:t0 AS timestamptz) - g * interval '{EVERY_SECONDS} seconds' AS created,
    NULL::timestamptz AS next_check FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) g WHERE {{where}}"""
# Converging intents started minutes ago (inside their window) and are next looked at in hours.
_CONVERGING = """SELECT g,
    CAST(:t0 AS timestamptz) - interval '10 minutes' - (g % 600) * interval '1 second' AS created,
    CAST(:t0 AS timestamptz) + interval '6 hours' + (g % 3600) * interval '1 second' AS next_check
    FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) g WHERE g % 500 = 250"""


FILL_CHUNK = 50_000


def fill(rig: Rig, templates: dict[str, Template], lo: int, hi: int, t0: datetime) -> None:
    """Intents lo..hi: 1% waiting for approval, 0.2% converging, the rest succeeded; two chunks at a time."""
    assert HISTORY_BASE + (hi + 1) * 10 < HISTORY_CEILING, "more intents than the audit numbering leaves room for"
    shapes = (
        ("succeeded", _HISTORY.format(where="g % 100 <> 0 AND g % 500 <> 250")),
        ("pending", _HISTORY.format(where="g % 100 = 0")),
        ("converging", _CONVERGING),
    )

    def chunk(start: int) -> None:
        with rig.admin.begin() as conn:
            for kind, rows in shapes:
                clone(conn, templates[kind], rows, True, t0=t0, lo=start, hi=min(start + FILL_CHUNK - 1, hi))

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(chunk, range(lo, hi + 1, FILL_CHUNK)))
    with rig.admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))


def reserve_history(rig: Rig) -> None:
    """Events appended from now on (templates done) are numbered above the history the fills copy in."""
    with rig.admin.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO audit_events (seq, intent_id, kind, actor, data, created_at, prev_hash, hash) "
                "SELECT :seq, NULL, 'bench_history', 'bench', '{}', now(), hash, "
                "encode(sha256(convert_to('bench:' || :seq, 'UTF8')), 'hex') "
                "FROM audit_events ORDER BY seq DESC LIMIT 1"
            ),
            {"seq": HISTORY_CEILING},
        )


# the runs -----------------------------------------------------------------------------------------


@dataclass
class Arming:
    """The due work one run hands the passes, and what it leaves behind to tidy."""

    approved: list[str]
    converging: list[str]


class Runs:
    def __init__(self, rig: Rig, templates: dict[str, Template], batch: int) -> None:
        self.rig, self.templates, self.batch = rig, templates, batch
        self._next = ARMED
        self.digest: Digest | None = None  # the last one built
        self.scrape = StoreCollector(rig.engine, ttl=0, now=rig.rt.clock.now)

    def arm(self, converging: list[str]) -> Arming:
        """`batch` intents approved just now, and `batch` converging intents due now."""
        now = self.rig.rt.clock.now()
        rows = "SELECT g, CAST(:now AS timestamptz) - interval '1 second' AS created, NULL::timestamptz AS next_check "
        rows += "FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) g"
        with self.rig.admin.begin() as conn:
            approved = clone(
                conn, self.templates["approved"], rows, False, now=now, lo=self._next, hi=self._next + self.batch - 1
            )
            conn.execute(sa.text("UPDATE intents SET next_check_at = NULL WHERE id = ANY(:ids)"), {"ids": approved})
            conn.execute(
                sa.text("UPDATE intents SET next_check_at = :due WHERE id = ANY(:ids)"),
                {"due": now - timedelta(seconds=1), "ids": converging},
            )
        self._next += self.batch
        return Arming(approved, converging)

    def tidy(self, arming: Arming) -> None:
        """The claimed intents end as succeeded, like the rest of history; nothing stays due."""
        with self.rig.admin.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE intents SET status = 'succeeded', version = version + 1, lease_owner = NULL, "
                    "lease_token = NULL, lease_expires_at = NULL, next_check_at = NULL WHERE id = ANY(:ids)"
                ),
                {"ids": arming.approved},
            )
            conn.execute(sa.text("DELETE FROM resource_locks WHERE intent_id = ANY(:ids)"), {"ids": arming.approved})
            conn.execute(
                sa.text(
                    "UPDATE slack_threads h SET settled = true, projected_version = i.version FROM intents i "
                    "WHERE i.id = h.intent_id AND h.intent_id = ANY(:ids)"
                ),
                {"ids": arming.approved},
            )

    def one(self, converging: list[str], warm_up: bool = False) -> dict[str, float]:
        """One run: each pass timed once, in the worker's order."""
        rig, slack = self.rig, self.rig.slack
        arming = self.arm(converging)
        took: dict[str, float] = {}
        with timed(took, "claim"):
            claimed = rig.executor.claim(self.batch)
        assert sorted(i.id for i in claimed) == sorted(arming.approved), "claim did not start the approved intents"
        for intent in claimed:
            slack.projector.mark(intent.id)  # they moved (what a CHANGED signal from their run would say)
        with timed(took, "reconcile"):
            reconciled = rig.reconciler.reconcile_due()
        assert sorted(c.intent_id for c in reconciled) == sorted(converging), "reconcile missed due intents"
        with timed(took, "project"):
            queued = slack.projector.sync()
        assert queued >= len(claimed), f"projected {queued} messages for {len(claimed)} claimed intents"
        with timed(took, "drain"):
            delivered = slack.outbox.drain_once()
        if warm_up:  # the first look at each converging intent moved it too: more than one drain's page
            slack.outbox.drain_until_idle(timeout=60)
        assert warm_up or (delivered == queued and slack.store.pending_count() == 0), (delivered, queued)
        with timed(took, "digest"):
            digest = build_digest(slack, rig.digest, rig.rt.clock.now())
        assert digest.counts, "the digest counted nothing"
        self.digest = digest
        with timed(took, "metrics"):
            gauges = list(self.scrape.collect())
        assert any(f.name == "opsbot_intents" and f.samples for f in gauges), "the scrape counted no intents"
        self.tidy(arming)
        return took


@contextmanager
def timed(into: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    into[name] = time.perf_counter() - start


def converging_ids(rig: Rig, template: Template, n: int) -> list[str]:
    """The converging intents the runs make due: the same ones every run and at every size."""
    with rig.admin.connect() as conn:
        q = (
            "SELECT id FROM intents WHERE status = 'converging' AND id <> :tid "
            "ORDER BY length(idempotency_key), idempotency_key LIMIT :n"
        )
        return [str(i) for i in conn.execute(sa.text(q), {"n": n, "tid": template.id}).scalars()]


def describe(digest: Digest) -> str:
    open_ = sum(n for s, n in digest.counts.items() if not s.terminal)
    ended = sum(n for s, n in digest.counts.items() if s.terminal)
    listed = len(digest.attention)
    oldest = f", the oldest waiting {digest.attention[0].age_seconds / 86400:.1f} days" if listed else ""
    return (
        f"{open_:,} open, {ended:,} ended in the period (the last day), {listed + digest.more:,} need attention "
        f"({listed} listed{oldest})"
    )


# no intent waits behind older ones -----------------------------------------------------------------


def newest_first(rig: Rig, size: int) -> str:
    """With older unsettled threads out of date, a new intent that moves is projected and delivered next pass."""
    slack = rig.slack
    with rig.admin.begin() as conn:
        unsettled = conn.execute(sa.text("SELECT count(*) FROM slack_threads WHERE NOT settled")).scalar_one()
        stale = conn.execute(
            sa.text(
                "UPDATE slack_threads SET projected_version = projected_version - 1 WHERE intent_id IN "
                "(SELECT intent_id FROM slack_threads WHERE NOT settled ORDER BY intent_id LIMIT :n)"
            ),
            {"n": STALE_FOR_DEMO},
        ).rowcount
    intent_id = rig.request(f"fresh{size}")  # its thread is opened and its plan message queued
    slack.outbox.drain_once()
    rig.approve(intent_id)  # a transition: CHANGED marks it for the projector, as in the worker
    start = time.perf_counter()
    slack.projector.sync()
    projected = time.perf_counter() - start
    intent, thread = rig.ops.get(intent_id), slack.store.thread(intent_id)
    assert thread is not None and thread.projected_version == intent.version, "the new intent waited"
    slack.outbox.drain_once()
    with rig.admin.begin() as conn:
        waiting = conn.execute(
            sa.text("SELECT count(*) FROM slack_outbox WHERE intent_id = :i AND status = 'pending'"), {"i": intent_id}
        ).scalar_one()
        assert waiting == 0, f"{waiting} messages of the new intent still queued after one drain"
        behind = conn.execute(
            sa.text(
                "SELECT count(*) FROM slack_threads h JOIN intents i ON i.id = h.intent_id "
                "WHERE NOT h.settled AND h.projected_version <> i.version"
            )
        ).scalar_one()
        # Put things back: the older threads projected, the new intent over.
        conn.execute(
            sa.text(
                "UPDATE intents SET status = 'succeeded', version = version + 1, next_check_at = NULL WHERE id = :i"
            ),
            {"i": intent_id},
        )
        conn.execute(
            sa.text(
                "UPDATE slack_threads h SET projected_version = i.version, settled = (i.id = :i) FROM intents i "
                "WHERE i.id = h.intent_id AND NOT h.settled AND (h.projected_version <> i.version OR i.id = :i)"
            ),
            {"i": intent_id},
        )
    slack.outbox.drain_until_idle(timeout=60)
    return (
        f"{unsettled:,} unsettled threads, {stale:,} older ones out of date: the new intent, approved, was projected "
        f"in the next pass ({projected * 1e3:.0f} ms) and delivered in the next drain; {behind:,} older ones "
        "still wait for the sweep"
    )


# running it ---------------------------------------------------------------------------------------


def fresh_pg(server_url: str) -> tuple[str, Callable[[], None]]:
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"opsbot_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = server_url.rsplit("/", 1)[0] + f"/{name}"

    def drop() -> None:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return url, drop


def summarize(values: list[float]) -> str:
    ms = [v * 1e3 for v in values]
    return f"{statistics.median(ms):7.1f} ({min(ms):.1f}..{max(ms):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="intents in the store, comma-separated")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--batch", type=int, default=20, help="due or changed intents handed to each pass")
    parser.add_argument(
        "--pg", default=os.environ.get("OPSBOT_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    )
    args = parser.parse_args()
    sizes = sorted(int(s.replace("_", "")) for s in args.sizes.split(","))
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    began = time.perf_counter()
    url, drop = fresh_pg(args.pg)
    results: dict[int, dict[str, list[float]]] = {}
    demos: dict[int, str] = {}
    digests: dict[int, str] = {}
    try:
        upgrade(url)
        rig = Rig.build(url, args.batch)
        templates = make_templates(rig)
        reserve_history(rig)
        runs = Runs(rig, templates, args.batch)
        t0, filled, converging = datetime.now(UTC), 0, list[str]()
        for size in sizes:
            start = time.perf_counter()
            fill(rig, templates, filled + 1, size, t0)
            filled = size
            print(f"filled {size:,} intents in {time.perf_counter() - start:.0f} s", flush=True)
            converging = converging or converging_ids(rig, templates["converging"], args.batch)
            runs.one(converging, warm_up=True)  # caches, and the first look at each converging intent
            taken: dict[str, list[float]] = {p: [] for p in PASSES}
            for _ in range(args.runs):
                for name, seconds in runs.one(converging).items():
                    taken[name].append(seconds)
            results[size] = taken
            assert runs.digest is not None
            digests[size] = describe(runs.digest)
            demos[size] = newest_first(rig, size)
        rig.engine.dispose()
        rig.admin.dispose()
    finally:
        drop()
    print(f"\n== one pass, {args.runs} runs, {args.batch} due or changed intents per pass: median (min..max) ms")
    head = "".join(f"{f'{s:,} intents':>28}" for s in sizes)
    print(f"{'pass':<10}{head}{f'ratio {sizes[-1]:,} / {sizes[0]:,}':>28}")
    for name in PASSES:
        cells = "".join(f"{summarize(results[s][name]):>28}" for s in sizes)
        ratio = statistics.median(results[sizes[-1]][name]) / statistics.median(results[sizes[0]][name])
        print(f"{name:<10}{cells}{ratio:>27.2f}x")
    print("\n== what the digest said")
    for size in sizes:
        print(f"{size:>10,} intents: {digests[size]}")
    print("\n== no intent's updates wait behind older ones")
    for size in sizes:
        print(f"{size:>10,} intents: {demos[size]}")
    print(f"\ntotal {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
