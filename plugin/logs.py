"""Logging for the CLI and the web app: plain text or one JSON object a line, and never a secret.

``configure_logging(settings)`` installs one handler on the root logger (replacing the one a
previous call installed, so calling it again is harmless) writing to the current ``sys.stderr``.
Every record that handler writes first passes through :class:`RedactingFilter`, which masks bearer
tokens, Flywheel API tokens (``fw_…``), webhook secrets (``whsec_…``), passwords in URLs,
``password=``/``token=``/``secret=``/``key=`` assignments, ``Authorization`` headers, HubSpot
private-app tokens (``pat-…``) and Salesforce session ids, in the message, its arguments, the
extra fields and the exception text.

JSON lines carry ``ts`` (UTC, ISO 8601 with ``Z``), ``level``, ``logger``, ``message``, the
extra fields given with ``extra={...}``, ``request_id`` inside a web request, and ``exception``.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import sys
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

from plugin.settings import Settings

MASK = "***"

#: The id of the web request being handled (set by plugin.web.ops), added to each JSON line.
request_id_var: ContextVar[str | None] = ContextVar("flywheel_request_id", default=None)

_id_prefix = secrets.token_hex(8)
_id_count = itertools.count(1)


def _new_prefix() -> None:
    global _id_prefix, _id_count
    _id_prefix, _id_count = secrets.token_hex(8), itertools.count(1)


os.register_at_fork(after_in_child=_new_prefix)


def new_request_id() -> str:
    """32 hex characters, unique across processes: a random prefix per process (new after a fork)
    and a counter. Cheaper than ``uuid4`` (a system call for every request) and as unique; a
    request id names a request in the logs, it is never a secret."""
    return f"{_id_prefix}{next(_id_count):016x}"


#: Libraries that log every HTTP call or migration step at INFO: quiet unless DEBUG is asked for.
CHATTY = ("httpx", "httpcore", "urllib3", "alembic", "hubspot", "simple_salesforce", "kombu", "amqp")

_SENSITIVE_NAME = r"(?:[\w.-]*?(?:password|passwd|token|secret|key|sessionid|session_id)|pwd|sid)"
_Rule = tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]
_RULES: tuple[_Rule, ...] = (
    # Authorization: Bearer abc / "Authorization": "Basic abc" / authorization=abc
    (
        re.compile(
            r"(?i)(\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)"
            r"(?:(bearer|basic|digest|token|negotiate)\s+)?[^\s\"',;}\]]+"
        ),
        lambda m: f"{m.group(1)}{m.group(2) + ' ' if m.group(2) else ''}{MASK}",
    ),
    (re.compile(r"(?i)\b(bearer)\s+(?!\*\*\*)[A-Za-z0-9._~+/=-]+"), rf"\1 {MASK}"),
    # scheme://user:password@host -> scheme://user:***@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/:@]*):[^\s/@]+@"), rf"\1:{MASK}@"),
    # XML (Salesforce SOAP login): <sessionId>…</sessionId>
    (re.compile(r"(?i)(<(?:\w+:)?sessionId>)[^<]*(</(?:\w+:)?sessionId>)"), rf"\1{MASK}\2"),
    # "token": "abc" / 'password': 'abc' (JSON and Python reprs)
    (re.compile(rf"(?i)([\"']{_SENSITIVE_NAME}[\"']\s*:\s*[\"'])[^\"']+"), rf"\1{MASK}"),
    # password=abc, ?token=abc&, api_key = abc
    (re.compile(rf"(?i)(\b{_SENSITIVE_NAME}\s*=\s*[\"']?)(?!\*\*\*)[^\s&\"',;)}}\]]+"), rf"\1{MASK}"),
    # Flywheel API tokens, Standard Webhooks secrets, HubSpot private-app tokens, Slack tokens
    (re.compile(r"\bfw_[A-Za-z0-9_-]{8,}"), f"fw_{MASK}"),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]{8,}"), f"whsec_{MASK}"),
    (re.compile(r"(?i)\bpat-[a-z]{2,4}\d?-[A-Za-z0-9-]{8,}"), f"pat-{MASK}"),
    (re.compile(r"\bxox[abeoprs]-[A-Za-z0-9-]{8,}"), f"xox-{MASK}"),
    # Salesforce session ids: the 15-or-18-character org id (00D…), '!', then the session part
    (re.compile(r"\b00D[A-Za-z0-9]{12,15}![A-Za-z0-9._]{16,}"), MASK),
)
_SECRET_KEY = re.compile(
    r"(?i)^(?:.*[_-])?(?:password|passwd|secret|token|key|authorization|cookie|credentials?|"
    r"session_?id|sid|api_?key)$"
)


def _scoped(pattern: str) -> str:
    return f"(?i:{pattern[4:]})" if pattern.startswith("(?i)") else f"(?:{pattern})"


#: Any of the rules, in one pass: most lines hold no secret, and one search is cheaper than twelve
#: substitutions (a request log line is written for every webhook delivery).
_ANY = re.compile("|".join(_scoped(pattern.pattern) for pattern, _ in _RULES))


def redact(text: str) -> str:
    """``text`` with every secret-looking part replaced by ``***``."""
    if _ANY.search(text) is None:
        return text
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value: Any, name: str | None = None) -> Any:
    """A value of an extra field, redacted: wholly when its name is a secret's, else its strings."""
    if name is not None and _SECRET_KEY.match(name) and value not in (None, ""):
        return MASK
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes):
        return redact(value.decode("utf-8", "replace"))
    if isinstance(value, dict):
        return {k: redact_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact(str(value))


#: Attributes every LogRecord has; the others are the ``extra`` fields.
_STANDARD = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class RedactingFilter(logging.Filter):
    """Masks secrets in the message (after its arguments are merged in), the extra fields and the
    exception text. The record is changed in place, so later handlers see the masked text too."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a message whose arguments do not fit: keep both, as text
            message = f"{record.msg} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        for key, value in extra_fields(record).items():
            setattr(record, key, redact_value(value, key))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _iso(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts, level, logger, message, request_id, the extra fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            line["request_id"] = request_id
        for key, value in extra_fields(record).items():
            line.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return orjson.dumps(line, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


class TextFormatter(logging.Formatter):
    """``2026-01-02T03:04:05.678Z INFO flywheel.x: message key=value``."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{_iso(record.created)} {record.levelname} {record.name}: {record.getMessage()}"
        extra = extra_fields(record)
        if extra:
            text += " " + " ".join(f"{k}={v}" for k, v in extra.items())
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text += "\n" + record.exc_text
        if record.stack_info:
            text += "\n" + record.stack_info
        return text


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (the CLI's test runner swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


_OURS = "_flywheel_handler"


def configure_logging(settings: Settings) -> logging.Handler:
    """Install (or replace) Flywheel's handler on the root logger, at ``settings.log_level``."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _OURS, False):
            root.removeHandler(handler)
    handler = _StderrHandler()
    setattr(handler, _OURS, True)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    if settings.log_level != "DEBUG":
        handler.addFilter(_quiet_libraries)
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(logging.getLevelName(settings.log_level))
    return handler


def _quiet_libraries(record: logging.LogRecord) -> bool:
    """Drop the chatty libraries' records below WARNING (from this handler only: other handlers,
    a test's log capture included, still get them)."""
    if record.levelno >= logging.WARNING:
        return True
    return not any(record.name == n or record.name.startswith(n + ".") for n in CHATTY)
