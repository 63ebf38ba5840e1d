"""`make demo`: the whole flow over real HTTP on embedded defaults.

SQLite intent store, AWS from moto, and the fake Slack in this process; `opsbot serve` runs as its own process
(executor, reconciler and Slack delivery included) exactly as it would in production.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import requests
import yaml
from moto.server import ThreadedMotoServer

from devstack.moto_replication import ReplicationSimulator
from fakeslack import FakeSlack, SlackDriver
from store.migrate import upgrade

ALICE, BOB = "U0ALICE01", "U0BOB0001"
OPS, INCIDENT = "C0OPS0001", "C0INCIDNT"
TOKEN, SECRET = "xoxb-demo-000000000-opsbot", "demo-signing-secret"
CONFIG = {
    "environments": {"prod": {"aws_region": "us-east-1", "incident_channel": INCIDENT}},
    "roles": {"dba": [ALICE, BOB], "dba-lead": [BOB]},
    "policies": {"rds.create-replica": {"request": ["dba"], "approve": ["dba-lead"], "approvals": 1}},
}
REQUEST = "rds.create-replica source=billing-db replica=billing-db-r1 instance_class=db.t3.large env=prod"


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def start_serve(env: dict[str, str], log_path: Path, module: str = "opsbot.cli") -> tuple[subprocess.Popen[str], str]:
    """`opsbot serve` (as run by `module`) on a free port; returns the process and its events URL."""
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "serve", "--host", "127.0.0.1", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            raise SystemExit(f"opsbot serve exited early; see {log_path}")
        if match := re.search(r"listening on (http://\S+)", line):
            # Keep reading its stdout (one JSON line per event) into the log, or the pipe fills and it stalls.
            threading.Thread(target=lambda: log.writelines(proc.stdout), daemon=True).start()  # type: ignore[arg-type]
            return proc, f"{match.group(1)}/slack/events"
    raise SystemExit("opsbot serve did not start within 60 s")


def wait(what: str, predicate: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise SystemExit(f"demo: timed out waiting for {what}")


@dataclass
class Stack:
    """Everything `opsbot serve` talks to, on this machine, plus the serve processes themselves."""

    workdir: Path
    aws: str
    fake: FakeSlack
    driver: SlackDriver  # to the first replica
    events_url: str
    database_url: str
    replicas: list[tuple[subprocess.Popen[str], str]]  # each `opsbot serve` and its events URL

    def driver_for(self, n: int) -> SlackDriver:
        return SlackDriver(self.fake, self.replicas[n][1], signing_secret=SECRET, timeout=30)


@contextmanager
def local_stack(
    config: dict[str, Any],
    users: dict[str, str],
    extra_env: dict[str, str] | None = None,
    database_url: str | None = None,
    replicas: int = 1,
    serve_module: str = "opsbot.cli",
) -> Iterator[Stack]:
    """moto with a source instance, the fake Slack, a migrated intent store (SQLite unless `database_url`), and
    `replicas` `opsbot serve` processes against them."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log is noise here
    workdir = Path(tempfile.mkdtemp(prefix="opsbot-local-"))
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{moto.get_host_and_port()[1]}"
    fake = FakeSlack(TOKEN, SECRET, channels={OPS: "ops", INCIDENT: "incident"}, users=users)
    fake.start()
    procs: list[tuple[subprocess.Popen[str], str]] = []
    replication = ReplicationSimulator().start()  # moto reports no replication status or ReplicaLag
    try:
        requests.post(f"{endpoint}/moto-api/reset", timeout=10)  # moto's state is per process, not per server
        rds = boto3.client(
            "rds",
            region_name="us-east-1",
            endpoint_url=endpoint,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        rds.create_db_instance(
            DBInstanceIdentifier="billing-db",
            Engine="postgres",
            DBInstanceClass="db.t3.medium",
            MasterUsername="admin",
            MasterUserPassword="local-password-1",
            AllocatedStorage=20,
        )
        (workdir / "opsbot.yml").write_text(yaml.safe_dump(config))
        db_url = database_url or f"sqlite:///{workdir / 'opsbot.db'}"
        upgrade(db_url)
        env = {
            **os.environ,
            "OPSBOT_DATABASE_URL": db_url,
            "OPSBOT_CONFIG": str(workdir / "opsbot.yml"),
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "OPSBOT_SLACK_API_URL": fake.api_url,
            **(extra_env or {}),
        }
        for n in range(replicas):
            procs.append(start_serve(env, workdir / ("serve.log" if n == 0 else f"serve-{n}.log"), serve_module))
        events_url = procs[0][1]
        driver = SlackDriver(fake, events_url, signing_secret=SECRET, timeout=30)
        yield Stack(workdir, endpoint, fake, driver, events_url, db_url, procs)
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        replication.stop()
        fake.stop()
        moto.stop()


def main() -> None:
    with local_stack(CONFIG, {ALICE: "alice", BOB: "bob"}, {"OPSBOT_RECONCILE_INTERVAL_SECONDS": "2"}) as stack:
        fake, driver = stack.fake, stack.driver
        say(f"embedded defaults: SQLite {stack.workdir / 'opsbot.db'}, moto {stack.aws}, fake Slack {fake.url}")
        print(f"opsbot serve is up at {stack.events_url} (its JSON log: {stack.workdir / 'serve.log'})")

        say(f"alice types: /ops {REQUEST}")
        ack = driver.slash_command("/ops", REQUEST, user=ALICE, channel=OPS)
        print(f"ack {ack.status} in {ack.elapsed * 1000:.0f} ms: {ack.json().get('text')}")
        wait("the plan message", lambda: fake.messages(OPS))
        plan = fake.messages(OPS)[0]

        say("alice clicks Approve on her own plan")
        driver.click(OPS, plan.ts, "ops_approve", user=ALICE)
        wait(
            "the refusal",
            lambda: any(
                "own request" in e.text or "own request" in str(p.body)
                for e in fake.ephemerals(user=ALICE)
                for p in fake.response_posts()
            ),
        )
        print("refused: you cannot approve your own request")

        say("bob, a dba-lead, clicks Approve")
        driver.click(OPS, plan.ts, "ops_approve", user=BOB)
        wait(
            "the verdict in the thread and on the plan message",
            lambda: (
                any("Succeeded" in m.text for m in fake.thread(OPS, plan.ts))
                and "succeeded" in str((fake.message(OPS, plan.ts) or plan).blocks).lower()
            ),
            timeout=90,
        )

        say("#ops as Slack shows it")
        print(fake.transcript(OPS))
        say("#incident")
        print(fake.transcript(INCIDENT))
        say("acks")
        for a in driver.acks:
            print(f"  {a.kind:<28} {a.status}  {a.elapsed * 1000:6.1f} ms")
        driver.assert_acks_fast()


if __name__ == "__main__":
    main()
