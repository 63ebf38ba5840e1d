"""Parsing of `workflow key=value … [env=…]` text, shared by the CLI and the /ops command."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from workflows.errors import InvalidInput

_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,40}$")


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    workflow: str
    params: dict[str, str]
    environment: str | None


def parse_pairs(tokens: list[str]) -> tuple[dict[str, str], str | None]:
    params: dict[str, str] = {}
    env = None
    for position, token in enumerate(tokens, 1):
        key, sep, value = token.partition("=")
        key = key.strip().replace("-", "_")
        # Never echo a value back: a pasted secret must not travel further than this parser.
        if not sep:
            raise InvalidInput(
                f"argument {position}: expected key=value (nothing after the workflow name may lack '=')"
            )
        if not _KEY.match(key):
            raise InvalidInput(
                f"argument {position}: {key[:40]!r} is not a parameter name (lowercase letters, digits, _)"
            )
        if not value:
            raise InvalidInput(f"argument {position}: {key} has no value")
        if key == "env":
            env = value
        elif key in params:
            raise InvalidInput(f"{key} is given twice")
        else:
            params[key] = value
    return params, env


def parse_request(text: str) -> ParsedRequest:
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise InvalidInput(f"could not parse the command: {exc}") from None
    if not tokens:
        raise InvalidInput("expected a workflow name, e.g. rds.create-replica source=… replica=… env=prod")
    params, env = parse_pairs(tokens[1:])
    return ParsedRequest(tokens[0], params, env)
