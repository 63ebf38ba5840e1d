"""opsbot served over real HTTP against the fake Slack, with moto for AWS: the end-to-end test bench."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fakeslack import FakeSlack, Message, SlackDriver
from opsbot.server import make_server
from opsbot.settings import Settings
from opsbot.wiring import Services, build_services, slack_app
from workflows.model import IntentStatus

TOKEN = "xoxb-test-0123456789-opsbot"
SECRET = "test-signing-secret-4f1c"
OPS, INCIDENT, DIGEST = "C0OPS0001", "C0INCIDENT", "C0DIGEST"
REQUESTER, APPROVER, APPROVER2, OUTSIDER = "U0REQUESTER", "U0APPROVER", "U0APPROVER2", "U0OUTSIDER"
GUEST = "U0GUEST01"  # a member of the channel who holds no role at all
USERS = {REQUESTER: "rita", APPROVER: "adam", APPROVER2: "ava", OUTSIDER: "otto", GUEST: "gus"}
CHANNELS = {OPS: "ops", INCIDENT: "incident", DIGEST: "ops-digest"}

SLACK_CONFIG: dict[str, Any] = {
    "environments": {
        "prod": {"aws_region": "us-east-1", "incident_channel": INCIDENT, "incident_risks": ["medium", "high"]}
    },
    "roles": {"dba": [REQUESTER, APPROVER, OUTSIDER], "dba-lead": [APPROVER, APPROVER2]},
    "policies": {"rds.create-replica": {"request": ["dba"], "approve": ["dba-lead"], "approvals": 1}},
    "digests": [{"channel": DIGEST, "cron": "0 9 * * *", "timezone": "UTC", "stale_approval_minutes": 30}],
}


@dataclass
class Bench:
    fake: FakeSlack
    driver: SlackDriver
    services: Services
    url: str
    services_settings: Settings

    def settle(self, rounds: int = 50) -> None:
        """Run executor, projector and outbox until nothing moves (the worker's jobs, driven by the test)."""
        assert self.services.slack is not None
        slack = self.services.slack
        for _ in range(rounds):
            assert slack.lazy.wait_idle(), "work after the acks did not finish"
            ran = self.services.executor.run_until_idle()
            queued = slack.projector.sync()
            slack.outbox.drain_until_idle(timeout=30)
            if not ran and not queued and not slack.store.pending_count():
                return
        raise AssertionError("the system did not settle")

    def parent(self, intent_id: str) -> Message:
        assert self.services.slack is not None
        thread = self.services.slack.store.thread(intent_id)
        assert thread is not None and thread.parent_ts, "no parent message was posted"
        message = self.fake.message(thread.channel, thread.parent_ts)
        assert message is not None
        return message

    def replies(self, intent_id: str) -> list[Message]:
        parent = self.parent(intent_id)
        return [m for m in self.fake.thread(parent.channel, parent.ts) if m.ts != parent.ts]

    def only_intent(self) -> str:
        [intent] = self.services.ops.list()
        return intent.id

    def status(self, intent_id: str) -> IntentStatus:
        return self.services.ops.show(intent_id).intent.status

    def ephemeral_texts(self, user: str) -> list[str]:
        texts = [e.text for e in self.fake.ephemerals(user=user)]
        texts += [str(p.body.get("text", "")) for p in self.fake.response_posts()]
        return texts


def scripted(script: Any) -> Any:
    """An `adapters` factory for `served`: real boto3 against moto, behind the scripted RDS fake."""
    from adapters.aws import BotoAdapters
    from tests.fakes import ScriptedAdapters

    return lambda settings: ScriptedAdapters(BotoAdapters(endpoint_url=settings.aws_endpoint_url), script)


@contextmanager
def served(
    tmp_path: Path,
    db_url: str,
    aws: str,
    adapters: Any = None,
    settings_overrides: dict[str, Any] | None = None,
    config_overrides: dict[str, Any] | None = None,
    clock: Any = None,
    registry: Any = None,
    **fake_options: Any,
) -> Iterator[Bench]:
    """Start the fake Slack and `opsbot serve`'s HTTP stack on ephemeral ports."""
    config = tmp_path / "opsbot.yml"
    config.write_text(yaml.safe_dump({**SLACK_CONFIG, **(config_overrides or {})}))
    with FakeSlack(TOKEN, SECRET, channels=CHANNELS, users=USERS, **fake_options) as fake:
        settings = Settings(
            database_url=db_url,
            config=config,
            slack_bot_token=TOKEN,
            slack_signing_secret=SECRET,
            slack_api_url=fake.api_url,
            aws_endpoint_url=aws,
            lease_seconds=30,
            **(settings_overrides or {}),
        )
        services = build_services(settings, adapters(settings) if adapters else None, clock=clock, registry=registry)
        app = slack_app(settings, services)
        server = make_server(app, services.store, SECRET, "127.0.0.1", 0, threads=8)
        closing = threading.Event()

        def run() -> None:
            try:
                server.run()
            except OSError:
                if not closing.is_set():  # closing the socket under the loop is how waitress stops
                    raise

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{server.effective_port}"
        try:
            yield Bench(fake, fake.driver(f"{url}/slack/events"), services, url, settings)
        finally:
            closing.set()
            server.close()
            thread.join(5)
            services.store.engine.dispose()


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")
