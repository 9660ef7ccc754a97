"""RFC 9457 problem details: the one shape of every error this app answers."""

from __future__ import annotations

from typing import Any

from flask import jsonify


def problem_body(status: int, title: str, detail: str | None = None, **extra: Any) -> dict[str, Any]:
    """RFC 9457 problem details, as a JSON object."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return body


def too_large_detail(limit: int) -> str:
    """Why a body over the limit was refused (413), by Flask's routes and the hook receivers alike."""
    return f"bodies over {limit:,} bytes are refused"


def problem(status: int, title: str, detail: str | None = None, **extra: Any) -> tuple[Any, int]:
    """An RFC 9457 problem-details response."""
    response = jsonify(problem_body(status, title, detail, **extra))
    response.mimetype = "application/problem+json"
    return response, status
