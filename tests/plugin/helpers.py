"""Small builders shared by the plugin tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson


def record(
    rid: str,
    *,
    source: str = "discourse",
    kind: str = "post",
    when: str = "2026-03-01T10:00:00Z",
    **member: Any,
) -> dict[str, Any]:
    member = member or {"email": f"{rid}@example.org"}
    return {"source": source, "id": rid, "type": kind, "occurred_at": when, "member": member}


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_bytes(b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in rows))
    return path
