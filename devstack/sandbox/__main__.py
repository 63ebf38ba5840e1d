"""`python -m devstack.sandbox` (also `make sandbox`, `opsbot sandbox`): the sandbox until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from devstack.sandbox.server import running_sandbox


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="opsbot sandbox", description="A local Slack workspace in the browser, with opsbot serve behind it."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address the page is served on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port of the page (default 8765; 0: any free one)")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def stopping(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    print("starting moto, the fake Slack and opsbot serve …", flush=True)
    try:
        with running_sandbox(args.host, args.port) as sandbox:
            stack = sandbox.stack
            print(f"intent store {stack.database_url}; moto {stack.aws}; fake Slack {stack.fake.url}")
            print(f"opsbot serve at {stack.events_url} (its log: {stack.workdir / 'serve.log'})")
            print(f"sandbox on {sandbox.url} (Ctrl-C stops it)", flush=True)
            stop.wait()
    except OSError as exc:  # most often: the page's port is taken
        why = exc.strerror or exc
        raise SystemExit(f"sandbox: cannot serve on {args.host}:{args.port}: {why} (try --port)") from None
    print("stopped")


if __name__ == "__main__":
    main()
