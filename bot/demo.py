"""`make demo`: the whole flow on embedded defaults (SQLite intent store, moto for AWS), through the real CLI."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import boto3
import yaml
from moto.server import ThreadedMotoServer

CONFIG = {
    "environments": {"prod": {"aws_region": "us-east-1", "incident_channel": "C0INCIDENT"}},
    "roles": {"dba": ["alice", "bob"], "dba-lead": ["bob"]},
    "policies": {"rds.create-replica": {"request": ["dba"], "approve": ["dba-lead"], "approvals": 1}},
}


def banner(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def run(env: dict[str, str], *args: str, expect: int = 0) -> str:
    print(f"$ opsbot {shlex.join(args)}", flush=True)
    result = subprocess.run([sys.executable, "-m", "bot.cli", *args], env=env, capture_output=True, text=True, timeout=120)
    sys.stdout.write(result.stdout)
    sys.stdout.write(result.stderr)
    if result.returncode != expect:
        raise SystemExit(f"demo: expected exit {expect}, got {result.returncode}")
    return result.stdout


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log is noise here
    workdir = Path(tempfile.mkdtemp(prefix="opsbot-demo-"))
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{moto.get_host_and_port()[1]}"
    try:
        (workdir / "opsbot.yml").write_text(yaml.safe_dump(CONFIG))
        env = {**os.environ, "OPSBOT_DATABASE_URL": f"sqlite:///{workdir / 'opsbot.db'}",
               "OPSBOT_CONFIG": str(workdir / "opsbot.yml"), "OPSBOT_LOG_LEVEL": "WARNING",
               "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo",
               "AWS_DEFAULT_REGION": "us-east-1"}
        banner(f"embedded defaults: SQLite at {workdir / 'opsbot.db'}, moto at {endpoint}")
        boto3.client("rds", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id="demo",
                     aws_secret_access_key="demo").create_db_instance(
            DBInstanceIdentifier="billing-db", Engine="postgres", DBInstanceClass="db.t3.medium",
            MasterUsername="admin", MasterUserPassword="demo-password-1", AllocatedStorage=20)
        print("source instance billing-db is available in moto")
        run(env, "db", "upgrade")

        banner("alice requests a read replica: preflight runs and prints the plan")
        out = run(env, "request", "rds.create-replica", "source=billing-db", "replica=billing-db-r1", "env=prod",
                  "--actor", "alice")
        intent_id = out.rsplit("opsbot approve", 1)[1].split()[0]

        banner("alice tries to approve her own request: refused")
        run(env, "approve", intent_id, "--actor", "alice", expect=2)

        banner("bob, a dba-lead, approves")
        run(env, "approve", intent_id, "--actor", "bob")

        banner("the worker executes: create, converge, verify postconditions")
        run(env, "worker", "--once")

        banner("what happened, from the intent store")
        run(env, "intents", "show", intent_id)
        run(env, "audit", "verify")
    finally:
        moto.stop()


if __name__ == "__main__":
    main()
