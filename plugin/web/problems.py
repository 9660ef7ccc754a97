"""RFC 9457 problem details: the one shape of every error this app answers."""

from __future__ import annotations

from typing import Any

from flask import jsonify


def problem(status: int, title: str, detail: str | None = None, **extra: Any) -> tuple[Any, int]:
    """An RFC 9457 problem-details response."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    response = jsonify(body)
    response.mimetype = "application/problem+json"
    return response, status
