"""Ack latency of /ops slash commands sent to a real `opsbot serve` process, N at a time.

    python bench/ack_latency.py [--total 200] [--concurrency 20] [--runs 3]

Every command is a real request (`rds.create-replica … env=prod`), so each ack is followed by preflight
against moto, an intent insert and Slack deliveries in the same server process: the acks are measured
under that load. Prints median, p99 and max per run, and over all runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import requests
import yaml
from moto.server import ThreadedMotoServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.demo import CONFIG, OPS, SECRET, TOKEN, start_serve
from bot.fakeslack import FakeSlack, SlackDriver
from store.migrate import upgrade

USERS = {f"U0USER{i:04d}": f"user{i}" for i in range(200)}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def one_run(total: int, concurrency: int) -> list[float]:
    workdir = Path(tempfile.mkdtemp(prefix="opsbot-bench-"))
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{moto.get_host_and_port()[1]}"
    fake = FakeSlack(TOKEN, SECRET, channels={OPS: "ops", "C0INCIDNT": "incident"}, users=USERS)
    fake.start()
    proc = None
    try:
        requests.post(f"{endpoint}/moto-api/reset", timeout=10)  # moto's state is per process, not per server
        boto3.client(
            "rds", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id="b", aws_secret_access_key="b"
        ).create_db_instance(
            DBInstanceIdentifier="billing-db",
            Engine="postgres",
            DBInstanceClass="db.t3.medium",
            MasterUsername="admin",
            MasterUserPassword="bench-password-1",
            AllocatedStorage=20,
        )
        config = {**CONFIG, "roles": {"dba": list(USERS), "dba-lead": list(USERS)[:5]}}
        (workdir / "opsbot.yml").write_text(yaml.safe_dump(config))
        db_url = f"sqlite:///{workdir / 'opsbot.db'}"
        upgrade(db_url)
        env = {
            **os.environ,
            "OPSBOT_DATABASE_URL": db_url,
            "OPSBOT_CONFIG": str(workdir / "opsbot.yml"),
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "b",
            "AWS_SECRET_ACCESS_KEY": "b",
            "AWS_DEFAULT_REGION": "us-east-1",
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "OPSBOT_SLACK_API_URL": fake.api_url,
            "OPSBOT_LOG_LEVEL": "WARNING",
        }
        proc, url = start_serve(env, workdir / "serve.log")
        driver = SlackDriver(fake, url, signing_secret=SECRET, timeout=30)
        users = list(USERS)

        def send(i: int) -> float:
            text = f"rds.create-replica source=billing-db replica=bench-r{i} env=prod"
            ack = driver.slash_command("/ops", text, user=users[i % len(users)], channel=OPS)
            if ack.status != 200:
                raise SystemExit(f"command {i}: ack {ack.status} {ack.body[:200]}")
            return ack.elapsed

        with ThreadPoolExecutor(concurrency) as pool:
            return list(pool.map(send, range(total)))
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        fake.stop()
        moto.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--total", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    everything: list[float] = []
    for run in range(1, args.runs + 1):
        started = time.perf_counter()
        acks = one_run(args.total, args.concurrency)
        everything += acks
        ms = [a * 1000 for a in acks]
        print(
            f"run {run}: {len(ms)} acks in {time.perf_counter() - started:.1f}s  median {statistics.median(ms):6.1f} ms"
            f"  p99 {percentile(ms, 99):6.1f} ms  max {max(ms):6.1f} ms  over 3 s: {sum(m > 3000 for m in ms)}"
        )
    ms = [a * 1000 for a in everything]
    print(
        f"all {len(ms)}: median {statistics.median(ms):.1f} ms, p99 {percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms"
    )


if __name__ == "__main__":
    main()
