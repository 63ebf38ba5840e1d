"""The sandbox in a real headless browser: Debian's chromium, driven by Playwright, clicks the whole flow.

Screenshots go to the test's tmp_path (`screenshots/`). `SANDBOX_SCREENSHOT_TO=docs/sandbox.png` also copies the
one the README shows there.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from devstack.demo import OPS, TOKEN
from devstack.sandbox import Sandbox, running_sandbox

CHROMIUM = shutil.which("chromium")
NO_CHROMIUM = (
    "Debian's chromium is not installed and could not be installed here: `make chromium` installs it "
    "(as root, with apt-get); Playwright's own browser download cannot run on this network"
)
WAIT_MS = 30_000
REQUEST = "/ops rds.create-replica source=billing-db replica=billing-db-r1 env=prod"
FAILING = "/ops rds.create-replica source=legacy-db replica=legacy-db-r1 env=prod"


@pytest.fixture
def browser() -> Iterator[Browser]:
    if CHROMIUM is None:
        pytest.skip(NO_CHROMIUM)
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with running_sandbox() as running:
        yield running


class Workspace:
    """The sandbox page as a person uses it: switch user, type in the composer, click what is shown."""

    def __init__(self, page: Page, shots: Path) -> None:
        self.page, self.shots = page, shots
        shots.mkdir(parents=True, exist_ok=True)
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def act_as(self, name: str) -> None:
        self.page.select_option("#user-switcher", label=name)
        expect(self.page.locator("#user-switcher option:checked")).to_have_text(name)

    def send(self, text: str) -> None:
        self.page.fill("#composer", text)
        self.page.press("#composer", "Enter")

    def message(self, text: str) -> Locator:
        """The channel message (not an ephemeral one) containing `text`, as first posted: a thread reply broadcast to
        the channel later (a verdict) may name the same thing."""
        found = self.page.locator("#messages .message:not(.ephemeral)").filter(has_text=text)
        expect(found).to_have_count(1, timeout=WAIT_MS)
        ts = found.get_attribute("data-ts")
        return self.page.locator(f"#messages .message[data-ts='{ts}']")

    def ephemeral(self, text: str) -> Locator:
        found = self.page.locator("#messages .message.ephemeral").filter(has_text=text)
        expect(found.last).to_be_visible(timeout=WAIT_MS)
        return found.last

    def thread_of(self, message: Locator) -> Locator:
        message.locator(".replies").click(timeout=WAIT_MS)
        return self.page.locator("#thread-body")

    def modal(self, title: str) -> Locator:
        modal = self.page.locator("#modal")
        expect(modal.locator(".dialog-head")).to_contain_text(title, timeout=WAIT_MS)
        return modal

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.mouse.move(0, 0)  # no hover highlight in the picture
        self.page.screenshot(path=str(path))
        return path


@pytest.fixture
def workspace(browser: Browser, sandbox: Sandbox, tmp_path: Path) -> Iterator[Workspace]:
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(sandbox.url)
    ws = Workspace(page, tmp_path / "screenshots")
    yield ws
    page.close()
    assert not ws.errors, f"the page threw: {ws.errors}"


def test_the_whole_flow_runs_in_the_browser(workspace: Workspace) -> None:
    """Command, form, refused self-approval, a peer's approval to success, a denial, a failure, the Home tab."""
    ws, page = workspace, workspace.page
    ws.act_as("alice")
    ws.send(REQUEST)
    ws.ephemeral("Running preflight")
    plan = ws.message("billing-db-r1")
    expect(plan).to_contain_text("Pending approval", timeout=WAIT_MS)
    expect(plan).to_contain_text("Create RDS instance billing-db-r1")  # the decision first, in plain words
    expect(plan).to_contain_text("Needs 1 more approval")
    expect(plan).not_to_contain_text("Verification")  # the details are one click away
    ws.shot("01-plan")

    ws.send("/ops rds.create-replica")  # no parameters: the generated form
    form = ws.modal("rds.create-replica")
    form.locator("select[data-block-id=env]").select_option("prod")
    form.locator("input[data-block-id=source]").fill("billing-db")
    form.locator("input[data-block-id=replica]").fill("billing_db!")
    form.get_by_role("button", name="Plan it").click()
    expect(form.locator("[data-input=replica] .bk-error")).to_be_visible(timeout=WAIT_MS)  # the bot's field error
    ws.shot("02-form-error")
    form.locator("input[data-block-id=replica]").fill("billing-db-r2")
    form.get_by_role("button", name="Plan it").click()
    expect(page.locator("#modal-overlay")).to_be_hidden(timeout=WAIT_MS)
    second = ws.message("billing-db-r2")

    plan.get_by_role("button", name="Approve").click()
    ws.ephemeral("cannot approve your own request")
    ws.shot("03-self-approval-refused")

    ws.act_as("bob")
    plan.get_by_role("button", name="Approve").click()
    ws.ephemeral("Approved")
    thread = ws.thread_of(plan)
    expect(thread).to_contain_text("created RDS instance billing-db-r1", timeout=WAIT_MS)
    expect(thread.locator(".message")).to_have_count(2)  # the plan message and one post: the verdict
    expect(plan).to_contain_text("Succeeded", timeout=WAIT_MS)
    plan.evaluate("el => el.scrollIntoView({block: 'start'})")
    success = ws.shot("04-thread-succeeded")
    if target := os.environ.get("SANDBOX_SCREENSHOT_TO"):
        shutil.copyfile(success, target)

    second.get_by_role("button", name="Deny").click()  # the reason dialog
    reason = ws.modal("Deny this plan")
    reason.locator("textarea[data-block-id=reason]").fill("one replica is enough")
    ws.shot("05-reason-dialog")
    reason.get_by_role("button", name="Deny", exact=True).click()  # the submit says what it does
    expect(page.locator("#modal-overlay")).to_be_hidden(timeout=WAIT_MS)
    expect(second).to_contain_text("Denied", timeout=WAIT_MS)

    ws.act_as("alice")
    ws.send(FAILING)
    failing = ws.message("legacy-db-r1")
    ws.act_as("bob")
    failing.get_by_role("button", name="Approve").click()
    thread = ws.thread_of(failing)
    expect(thread).to_contain_text("read replication is in error", timeout=WAIT_MS)
    verdict = thread.locator(".message").filter(has_text="What you can do now").last
    undo = "Undo: delete RDS instance legacy-db-r1"  # Compensate, named by its effect
    for offered in ("Retry", "Cancel", "Mark done", undo):
        expect(verdict.get_by_role("button", name=offered)).to_be_visible(timeout=WAIT_MS)
    expect(failing).to_contain_text("Failed", timeout=WAIT_MS)  # the plan message, edited: its checklist says where
    expect(failing).to_contain_text("1 of 2 steps done")
    ws.shot("06-failed-with-recovery-buttons")

    ws.act_as("carol")  # not the requester: she may propose undoing it
    verdict.get_by_role("button", name=undo).click()
    confirm = page.locator("#confirm")
    expect(confirm).to_contain_text("Proposes a plan to delete RDS instance legacy-db-r1 in prod")
    ws.shot("07-confirm-dialog")
    confirm.get_by_role("button", name="Propose undoing").click()
    expect(failing).to_contain_text("Pending approval", timeout=WAIT_MS)  # the undo plan, to approve

    ws.act_as("bob")
    page.click("#app-link")
    home = page.locator("#home")
    expect(home).to_contain_text("Waiting for your approval (1)", timeout=WAIT_MS)
    expect(home).to_contain_text("Your recent operations")
    ws.shot("08-home-tab")
    home.get_by_role("button", name="Review and approve").click()  # the whole plan first
    review = ws.modal("Plan")
    expect(review).to_contain_text("Rollback")
    ws.shot("08b-review-and-approve")
    review.get_by_role("button", name="Approve", exact=True).click()  # from the Home tab the answer comes by DM
    expect(page.locator("#modal-overlay")).to_be_hidden(timeout=WAIT_MS)
    page.click("#tab-messages")
    expect(page.locator("#dm")).to_contain_text("Approved", timeout=WAIT_MS)
    page.locator("[data-goto=" + OPS + "]").first.click()
    expect(failing).to_contain_text("Compensated", timeout=WAIT_MS)
    ws.shot("09-compensated")


def test_a_payload_slack_refuses_shows_as_an_error_not_a_message(workspace: Workspace, sandbox: Sandbox) -> None:
    """A call the fake Slack refuses (here: a section over 3,000 characters) is an error on the page, not a post."""
    too_long = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
    answer = requests.post(
        f"{sandbox.stack.fake.api_url}chat.postMessage",
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={"channel": OPS, "text": "too long", "blocks": [too_long]},
        timeout=10,
    ).json()
    assert answer["ok"] is False and answer["error"] == "invalid_blocks"
    error = workspace.page.locator("#messages .slack-error")
    expect(error).to_contain_text("invalid_blocks", timeout=WAIT_MS)
    expect(error).to_contain_text("chat.postMessage")
    expect(workspace.page.locator("#errors-toggle")).to_have_text(re.compile("1 refused by Slack"))
    expect(workspace.page.locator("#messages .message")).to_have_count(0)
    workspace.shot("refused")


def test_opsbot_sandbox_serves_the_page_until_stopped() -> None:
    """`opsbot sandbox` starts the stack and the page, and stops cleanly on SIGINT."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "opsbot.cli", "sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url, deadline, seen = None, time.monotonic() + 60, []
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            seen.append(line)
            if match := re.search(r"sandbox on (http://\S+)", line):
                url = match.group(1)
        assert url, "".join(seen)
        page = requests.get(url, timeout=10)
        assert page.status_code == 200 and "<title>opsbot sandbox</title>" in page.text
        state = requests.get(f"{url}/api/state", timeout=10).json()
        assert [p["name"] for p in state["people"]] == ["alice", "bob", "carol", "otto"]
        assert {c["name"] for c in state["channels"]} == {"ops", "incident"}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
