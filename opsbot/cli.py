"""`opsbot`: the break-glass command line, on the same services and policy as Slack."""

from __future__ import annotations

import getpass
import json
import os
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import structlog
import typer
from rich.console import Console
from rich.markup import escape

from bot.commands import parse_pairs
from opsbot.cli_render import list_json, render_list, render_plan, render_view, view_json
from opsbot.settings import Settings
from opsbot.wiring import Services, build_services, slack_app
from workflows.config import OpsConfig
from workflows.errors import InvalidInput, OpsError, PermissionDenied
from workflows.logs import configure_logging
from workflows.model import IntentStatus
from workflows.reconciler import verdict_of
from workflows.redaction import redact_text
from workflows.service import OpsService

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="opsbot: workflow control plane for risky ops changes"
)
intents_app = typer.Typer(no_args_is_help=True, help="inspect intents")
db_app = typer.Typer(no_args_is_help=True, help="intent store schema")
audit_app = typer.Typer(no_args_is_help=True, help="audit log")
app.add_typer(intents_app, name="intents")
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")

out = Console(soft_wrap=False, width=140, markup=False, highlight=False)  # operator text is never markup
err = Console(stderr=True, soft_wrap=True)
log = structlog.get_logger("opsbot.cli")
T = TypeVar("T")

Actor = Annotated[
    str | None,
    typer.Option("--actor", help="act as this identity (default: yours, from cli.identities; see cli.actor_override)"),
]
Reason = Annotated[str, typer.Option("--reason", help="why; recorded in the audit log")]
SERVICES: Callable[[Settings], Services] = build_services  # the crash tests swap in services with a fault seam


@dataclass(frozen=True)
class Caller:
    """Who is typing: the identity they act as, and the OS user and host every event records beside it."""

    identity: str
    origin: str


def caller(config: OpsConfig, actor: str | None) -> Caller:
    """The OS user mapped to a Slack id by `cli.identities`, or `os:<name>`, which holds no role unless named."""
    os_user, host = getpass.getuser(), socket.gethostname()
    own = config.cli.identities.get(os_user) or f"os:{os_user}"
    if actor is None or actor == own:
        return Caller(own, f"cli:{os_user}@{host}")
    if not config.cli.actor_override:
        raise PermissionDenied(f"--actor {actor} refused: this config sets cli.actor_override: false (you are {own})")
    return Caller(actor, f"cli:{os_user}@{host} acting as {actor}")


def _services() -> Services:
    settings = Settings()
    configure_logging(settings.log_level)
    return SERVICES(settings)


def _ops(actor: str | None) -> tuple[OpsService, str]:
    """The operations, as the caller; every event they write records the OS user and host."""
    svc = _services()
    who = caller(svc.runtime.config, actor)
    return OpsService(svc.runtime, origin=who.origin), who.identity


def _run(fn: Callable[[], T]) -> T:
    """Operator errors print one clear line and exit 2; anything else gets a correlation id, never a trace."""
    try:
        return fn()
    except OpsError as exc:
        err.print(f"[red]error:[/red] {escape(redact_text(str(exc)))}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception:
        correlation = uuid.uuid4().hex[:12]
        log.exception("unexpected_error", correlation_id=correlation)
        err.print(f"[red]unexpected error[/red] (correlation id {correlation}); details are in the log")
        raise typer.Exit(1) from None


@app.command()
def request(
    workflow: str,
    pairs: Annotated[list[str] | None, typer.Argument(help="key=value parameters; env=<environment>")] = None,
    env: Annotated[str | None, typer.Option("--env")] = None,
    idempotency_key: Annotated[str | None, typer.Option("--idempotency-key")] = None,
    actor: Actor = None,
) -> None:
    """Request a workflow: preflight runs and the plan is printed for review."""

    def go() -> None:
        params, env_in_args = parse_pairs(pairs or [])
        environment = env or env_in_args
        if not environment:
            raise OpsError("say which environment: env=<name> or --env <name>")
        ops, identity = _ops(actor)
        result = ops.request(workflow, params, environment, identity, idempotency_key)
        if not result.created:
            out.print(
                f"an intent with this idempotency key exists already: {result.intent.id} ({result.intent.status.value})"
            )
        out.print(render_plan(result.intent))
        out.print(f"next: another approver runs  opsbot approve {result.intent.id}")

    _run(go)


@app.command()
def approve(
    intent_id: str,
    plan_hash: Annotated[
        str | None, typer.Option("--plan-hash", help="the hash of the plan you reviewed (12+ hex digits)")
    ] = None,
    actor: Actor = None,
) -> None:
    """Approve exactly the plan you reviewed: give its hash, or confirm the plan shown on a terminal."""

    def go() -> None:
        ops, identity = _ops(actor)
        reviewed = plan_hash
        if reviewed is None:
            if not sys.stdin.isatty():
                raise InvalidInput(
                    "say which plan you approve: --plan-hash <hash> (see `opsbot intents show ID`), "
                    "or run this on a terminal to review and confirm it"
                )
            current = ops.get(intent_id)
            out.print(render_plan(current))
            if not typer.confirm(f"Approve plan {current.plan_hash[:12]} of intent {current.id}?", default=False):
                raise typer.Exit(1)
            reviewed = current.plan_hash
        intent = ops.approve(intent_id, identity, reviewed)
        out.print(f"intent {intent.id} is {intent.status.value}: {intent.status_reason or ''}")

    _run(go)


@app.command()
def deny(intent_id: str, reason: Annotated[str, typer.Option("--reason")] = "", actor: Actor = None) -> None:
    """Deny the intent's plan."""

    def go() -> None:
        ops, identity = _ops(actor)
        out.print(f"intent {ops.deny(intent_id, identity, reason).id} denied")

    _run(go)


def _action(name: str, method: str) -> None:
    def command(intent_id: str, reason: Reason, actor: Actor = None) -> None:
        def go() -> None:
            ops, identity = _ops(actor)
            intent = getattr(ops, method)(intent_id, identity, reason)
            out.print(f"intent {intent.id} is now {intent.status.value}: {intent.status_reason or ''}")

        _run(go)

    command.__doc__ = f"{name.capitalize()} an intent (see `intents show` for what is available)."
    app.command(name)(command)


for _name, _method in (
    ("retry", "retry"),
    ("resume", "resume"),
    ("cancel", "cancel"),
    ("mark-done", "mark_done"),
    ("compensate", "compensate"),
    ("run-now", "run_now"),
):
    _action(_name, _method)


AsJson = Annotated[bool, typer.Option("--json", help="print JSON with stable fields (see the README) for scripts")]


def _print_json(document: dict[str, Any]) -> None:
    """One JSON document on stdout, never wrapped or styled (logs go to stderr)."""
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


@intents_app.command("list")
def intents_list(
    status: Annotated[IntentStatus | None, typer.Option("--status")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 50,
    as_json: AsJson = False,
) -> None:
    """List intents, newest first."""

    def go() -> None:
        intents = _services().ops.list(status, limit)
        if as_json:
            _print_json(list_json(intents))
        else:
            out.print(render_list(intents))

    _run(go)


@intents_app.command("show")
def intents_show(intent_id: str, as_json: AsJson = False) -> None:
    """Plan, steps, events and the four answers for one intent."""

    def go() -> None:
        view = _services().ops.show(intent_id)
        if as_json:
            _print_json(view_json(view))
        else:
            out.print(render_view(view))

    _run(go)


@app.command()
def reconcile() -> None:
    """One pass: classify due intents, resume those whose executor died, run what became runnable, then exit."""

    def go() -> None:
        svc = _services()
        for c in reconcile_pass(svc):
            out.print(f"{c['intent']}  {c['workflow']}  {c['verdict']}  {c['reason']}")

    _run(go)


def reconcile_pass(svc: Services) -> list[dict[str, Any]]:
    touched = {c.intent_id for c in svc.reconciler.reconcile_due()}
    touched |= {i.id for i in svc.reconciler.expire_requests()}
    touched |= {i.id for i in svc.executor.run_until_idle()}
    results = []
    for intent_id in sorted(touched):
        intent = svc.ops.show(intent_id).intent
        verdict = verdict_of(intent.status)
        results.append(
            {
                "intent": intent.id,
                "workflow": intent.workflow,
                "verdict": verdict.value if verdict else intent.status.value,
                "reason": intent.status_reason or "",
            }
        )
    return results


@app.command()
def worker(once: Annotated[bool, typer.Option("--once", help="drain what is runnable now, then exit")] = False) -> None:
    """Run the executor and the reconciler until interrupted."""

    def go() -> None:
        settings = Settings()
        configure_logging(settings.log_level)
        svc = SERVICES(settings)
        if once:
            reconcile_pass(svc)
            return
        from opsbot.worker import start_worker

        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        worker = start_worker(svc, settings)
        log.info("worker_started", owner=svc.executor.owner)
        stop.wait()
        worker.shutdown()

    _run(go)


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 3000,
    socket_mode: Annotated[bool, typer.Option("--socket", help="Socket Mode (needs SLACK_APP_TOKEN)")] = False,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="leave executing to separate `opsbot worker`s")
    ] = False,
) -> None:
    """Serve Slack: HTTP at /slack/events (and /healthz), or Socket Mode; runs the worker too by default."""

    def go() -> None:
        from opsbot.server import make_server
        from opsbot.worker import start_worker

        settings = Settings()
        configure_logging(settings.log_level, stream=sys.stdout)
        svc = SERVICES(settings)
        bolt = slack_app(settings, svc)
        check_slack(svc)
        worker = start_worker(svc, settings, engine_jobs=not no_worker)

        def stop(*_: Any) -> None:
            raise SystemExit(0)

        signal.signal(signal.SIGTERM, stop)
        try:
            if socket_mode:
                if settings.slack_app_token is None:
                    raise OpsError("--socket needs SLACK_APP_TOKEN")
                from slack_bolt.adapter.socket_mode import SocketModeHandler

                log.info("serving_socket_mode")
                SocketModeHandler(bolt, settings.slack_app_token.get_secret_value()).start()  # type: ignore[no-untyped-call]
            else:
                assert settings.slack_signing_secret is not None  # slack_app refused to build without it
                server = make_server(bolt, svc.store, settings.slack_signing_secret.get_secret_value(), host, port)
                log.info("serving", url=f"http://{host}:{server.effective_port}/slack/events")
                print(f"listening on http://{host}:{server.effective_port}", flush=True)
                try:
                    server.run()
                finally:
                    server.close()
        except KeyboardInterrupt:
            pass
        finally:
            worker.shutdown()

    _run(go)


def check_slack(svc: Services) -> None:
    """Say at start-up whether Slack answers; keep going either way (messages wait in the outbox)."""
    assert svc.slack is not None
    try:
        who = svc.slack.client.auth_test()
        log.info("slack_connected", team=who.get("team"), bot_user=who.get("user_id"))
    except Exception as exc:
        log.warning("slack_unreachable_at_startup", error=str(exc))


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply schema migrations to OPSBOT_DATABASE_URL."""

    def go() -> None:
        from store.migrate import schema_state, upgrade

        settings = Settings()
        configure_logging(settings.log_level)
        upgrade(settings.database_url, revision)
        state = schema_state(settings.database_url)
        where = ", ".join(state.current)
        out.print(f"intent store schema is at {where}" + (" (head: up to date)" if state.at_head else ""))

    _run(go)


@app.command()
def doctor(
    timeout: Annotated[float, typer.Option("--timeout", help="seconds each network check may take")] = 5.0,
    manifest: Annotated[
        Path | None, typer.Option("--manifest", help="read the bot scopes from this manifest.yml (default: built in)")
    ] = None,
) -> None:
    """Check this installation: settings, config, dsn_env variables, store and schema, Slack, AWS. Exits 1 on a FAIL."""

    def go() -> None:
        from opsbot.doctor import MANIFEST_BOT_SCOPES, Status, diagnose, manifest_bot_scopes

        configure_logging("WARNING")  # until the settings are read: a doctor's output is its findings
        scopes = manifest_bot_scopes(manifest) if manifest else MANIFEST_BOT_SCOPES
        findings = diagnose(scopes, timeout)
        for finding in findings:
            typer.echo(finding.line())
        counts = {status: sum(f.status is status for f in findings) for status in Status}
        words = {Status.OK: "ok", Status.FAIL: "failed", Status.SKIP: "skipped"}
        typer.echo(", ".join(f"{n} {words[status]}" for status, n in counts.items() if n))
        if counts[Status.FAIL]:
            raise typer.Exit(1)

    _run(go)


@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[
        str | None, typer.Option("--anchor", help="a head printed by an earlier run: <seq>:<hash>")
    ] = None,
) -> None:
    """Walk the audit hash chain and report edited or deleted events."""

    def go() -> None:
        report = _services().store.verify_audit(anchor)
        if report.ok:
            out.print(f"audit chain intact: {report.checked} events verified")
            out.print(f"head {report.head} (keep it outside the database; pass it as --anchor next time)")
            return
        for problem in report.problems:
            err.print(f"[red]{problem}[/red]")
        raise typer.Exit(3)

    _run(go)


@app.command()
def sandbox(
    host: Annotated[str, typer.Option("--host", help="address the page is served on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port of the page (0: any free one)")] = 8765,
) -> None:
    """A local Slack workspace in the browser on embedded defaults (a development checkout; see the README)."""
    # The sandbox is dev tooling (devstack, not in the wheel): run it as its own program rather than import it.
    checkout = Path(__file__).resolve().parent.parent
    if not (checkout / "devstack" / "sandbox" / "__main__.py").is_file():
        err.print("the sandbox is development tooling, not in the wheel: run `make sandbox` in a checkout of opsbot")
        raise typer.Exit(2)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(checkout), os.environ.get("PYTHONPATH")) if p)}
    argv = [sys.executable, "-m", "devstack.sandbox", "--host", host, "--port", str(port)]
    os.execve(sys.executable, argv, env)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
