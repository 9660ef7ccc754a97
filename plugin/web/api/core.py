"""The REST API's frame: flask-smorest with RFC 9457 problem details for every error, bearer-token
auth with one permission per operation, and opaque cursors for pagination.

Every error the API (or any other page of the app) answers is ``application/problem+json`` with
``type``, ``title``, ``status``, ``detail`` and, for bad input, ``errors`` mapping each field to
what is wrong with it; the OpenAPI document says so for every status it lists.
"""

from __future__ import annotations

import base64
import http
import json
import math
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any, TypeVar

import marshmallow as ma
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import g, request
from flask_smorest import Api, Blueprint, abort
from flask_smorest.utils import prepare_response
from werkzeug.exceptions import HTTPException

from plugin.db.ids import MAX_BIG_ID, MAX_ID
from plugin.errors import ConfigError, FlywheelError
from plugin.services.roles import allowed, roles_with
from plugin.services.tokens import Principal, authenticate
from plugin.web.context import engine, now
from plugin.web.problems import problem, too_large_detail

PROBLEM = "application/problem+json"
F = TypeVar("F", bound=Callable[..., Any])


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details."""

    type = ma.fields.String(metadata={"description": "A URI naming the problem type"})
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String(metadata={"description": "What happened and what to do next"})
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        metadata={"description": "Field name -> what is wrong with it"},
    )


LOCATIONS = ("json", "query", "form", "headers", "path", "view_args", "files", "cookies")


def _field_errors(messages: Any) -> dict[str, str]:
    """webargs/marshmallow's nested messages flattened to "field" (or "items.0.email") -> sentence;
    the request location (query, json...) is dropped, as a field name is unique within a request."""
    out: dict[str, str] = {}

    def walk(value: Any, path: list[str]) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(inner, [*path, str(key)])
        elif isinstance(value, list) and all(isinstance(m, str) for m in value):
            out[".".join(path) or "_schema"] = " ".join(value)
        elif isinstance(value, list):
            for i, inner in enumerate(value):
                walk(inner, [*path, str(i)])
        else:
            out[".".join(path) or "_schema"] = str(value)

    if isinstance(messages, dict):
        for location, inner in messages.items():
            walk(inner, [] if location in LOCATIONS else [str(location)])
    else:
        walk(messages, [])
    return out


class FlywheelApi(Api):  # type: ignore[misc]  # flask-smorest ships no type hints
    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            content = self.DEFAULT_RESPONSE_CONTENT_TYPE
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
                content = PROBLEM
            prepare_response(response, self.spec, content)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)

    def _register_error_handlers(self) -> None:
        self._app.register_error_handler(HTTPException, self.handle_http_exception)
        self._app.register_error_handler(FlywheelError, _flywheel_error)

    def handle_http_exception(self, error: HTTPException) -> Any:
        status = error.code or 500
        data = getattr(error, "data", None) or {}
        extra: dict[str, Any] = {}
        detail = data.get("message")
        messages = data.get("errors") or data.get("messages")
        if messages:
            extra["errors"] = _field_errors(messages)
            detail = detail or "the request has invalid fields: " + ", ".join(sorted(extra["errors"]))
        detail = detail or error.description
        if status == 413:
            limit = self._app.config.get("MAX_CONTENT_LENGTH")
            detail = too_large_detail(limit) if limit else detail
        response, code = problem(status, error.name, detail, **extra)
        for key, value in {**dict(error.get_headers()), **(data.get("headers") or {})}.items():
            if key.lower() != "content-type":
                response.headers[key] = value
        return response, code


def _flywheel_error(exc: FlywheelError) -> Any:
    extra: dict[str, Any] = {}
    fields = getattr(exc, "fields", None)
    if fields:
        extra["errors"] = fields
    detail = f"{exc.user_message}; {exc.hint}" if exc.hint else exc.user_message
    # A setting of this installation is wrong: not something the caller can fix (500, with the
    # hint for whoever reads the answer and tells the operator).
    status = 500 if isinstance(exc, ConfigError) else exc.http_status
    return problem(status, http.HTTPStatus(status).phrase, detail, **extra)


def if_match(header: str | None, etag: str) -> bool:
    """RFC 9110 If-Match: ``*`` matches any current representation; otherwise one of the listed
    entity tags must equal ``etag`` (weak tags never match: an edit needs the strong one)."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip() == etag for tag in header.split(","))


def _refuse_nul() -> Any:
    """No stored text can hold NUL (PostgreSQL refuses it): a request carrying one anywhere (path,
    query, JSON body) is answered 422 naming the fields, before any view reads it."""
    if not request.path.startswith("/api/"):
        return None
    body = request.get_data(cache=True)
    if "\x00" not in request.path and b"%00" not in request.query_string and b"\\u0000" not in body:
        return None
    fields = {name: NUL for name, value in request.args.items() if "\x00" in value}
    data = request.get_json(silent=True)
    if isinstance(data, dict):
        fields |= {str(k): NUL for k, v in data.items() if _has_nul(v)}
    return problem(422, "Unprocessable Content", "text may not contain NUL characters",
                   errors=fields or {"_schema": NUL})  # fmt: skip


NUL = "remove the NUL (\\u0000) characters"


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def make_api(app: Any) -> FlywheelApi:
    app.config.update(
        API_TITLE="Flywheel API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
    )
    api = FlywheelApi(
        app,
        spec_kwargs={
            "marshmallow_plugin": MarshmallowPlugin(),
            "info": {
                "description": "Members, scores, programs, webhooks and CRM sync of one workspace. "
                "Every call carries an API token (`Authorization: Bearer fw_...`); the token's "
                "workspace and role decide what it sees and may do."
            },
        },
    )
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    app.before_request(_refuse_nul)
    return api


def blueprint(name: str, url_prefix: str, description: str) -> Blueprint:
    return Blueprint(name, __name__, url_prefix=f"/api/v1{url_prefix}", description=description)


def current() -> Principal:
    found: Principal = g.principal
    return found


def workspace_id() -> int:
    return current().workspace_id


def _bearer() -> Principal | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    with engine().begin() as conn:
        return authenticate(conn, header.removeprefix("Bearer ").strip(), now())


def guarded(blp: Blueprint, permission: str, *, not_found: bool = True) -> Callable[[F], F]:
    """Require a valid token whose role holds ``permission``; document 401, 403, 429 (and 404)."""
    allowed("admin", permission)  # raises on a typo when the module loads

    def decorate(func: F) -> F:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            who = _bearer()
            if who is None:
                return problem(401, "Unauthorized", "send a valid API token: Authorization: Bearer fw_...")
            if not allowed(who.role, permission):
                roles = " or ".join(roles_with(permission))
                return problem(403, "Forbidden", f"a {who.role} token may not do this ({roles} may)")
            g.principal = who
            return func(*args, **kwargs)

        decorated: Any = wrapper
        decorated.permission = permission  # read by the role matrix test and the dashboard
        statuses: Sequence[int] = (401, 403, 429) + ((404,) if not_found else ())
        for status in statuses:
            decorated = blp.alt_response(status, response=http.HTTPStatus(status).name)(decorated)
        decorated = blp.doc(security=[{"bearer": []}])(decorated)
        return decorated  # type: ignore[no-any-return]

    return decorate


# --- cursor pagination ------------------------------------------------------------------------


class PageArgs(ma.Schema):
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(1, 200))
    cursor = ma.fields.String(
        load_default=None, metadata={"description": "`next_cursor` of the previous page; omit for the first"}
    )


def page_schema(item: type[ma.Schema], name: str) -> type[ma.Schema]:
    """``{"items": [...], "next_cursor": "..." | null}``."""
    return ma.Schema.from_dict(
        {
            "items": ma.fields.List(ma.fields.Nested(item), required=True),
            "next_cursor": ma.fields.String(allow_none=True, required=True),
        },
        name=name,
    )


def encode_cursor(key: Sequence[Any]) -> str:
    return (
        base64.urlsafe_b64encode(json.dumps(list(key), separators=(",", ":")).encode()).decode().rstrip("=")
    )


def decode_cursor(cursor: str | None, types: Sequence[type], *, wide: bool = False) -> list[Any] | None:
    """The sort key a cursor carries, checked against the expected types; 400 on anything else.
    Ids fit a 32-bit column unless ``wide`` (the 64-bit ids of activities, deliveries, rewards
    and score events): a larger one would reach the database and fail there."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
        ok = isinstance(key, list) and len(key) == len(types)
        biggest = MAX_BIG_ID if wide else MAX_ID
        ok = ok and all(_typed(v, t, biggest) for v, t in zip(key, types, strict=True))
    except (ValueError, TypeError):
        ok = False
    if not ok:
        abort(
            400, message="the cursor is not one this API gave", errors={"cursor": "use next_cursor as given"}
        )
    return key  # type: ignore[no-any-return]


def _typed(value: Any, kind: type, biggest: int) -> bool:
    """A cursor value of the expected type that a column can be compared with: never null (no
    sort key is), no id beyond the column, no NaN or infinity."""
    if value is None:
        return False
    if isinstance(value, bool):
        return kind is bool
    if isinstance(value, int) and kind is int and not 0 <= value <= biggest:
        return False
    if isinstance(value, float | int) and not math.isfinite(value):
        return False
    return isinstance(value, kind) or (kind is float and isinstance(value, int))


def paged(rows: list[Any], limit: int, key: Callable[[Any], Sequence[Any]]) -> dict[str, Any]:
    """Given up to ``limit + 1`` rows, the page and the cursor to the next one."""
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": encode_cursor(key(rows[-1])) if more and rows else None}
