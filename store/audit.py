"""The audit hash chain: each event's hash covers its content and the previous event's hash."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from workflows.plan import canonical_json, sha256_hex

GENESIS = "0" * 64


def chain_hash(
    prev_hash: str, seq: int, intent_id: str | None, kind: str, actor: str, data: Any, created_at: datetime
) -> str:
    body = canonical_json(
        {
            "seq": seq,
            "intent_id": intent_id,
            "kind": kind,
            "actor": actor,
            "data": data,
            "created_at": created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        }
    )
    return sha256_hex(prev_hash + body)
