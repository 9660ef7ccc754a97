"""Settings from ``FLYWHEEL_*`` environment variables, validated once at start-up."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plugin.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///flywheel.db"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    #: Fernet key (urlsafe base64, 32 bytes) for secrets at rest. When unset, a key file beside the
    #: SQLite database (``.flywheel-secret``, mode 0600) is created and used, so the embedded default
    #: needs no setup; production sets it explicitly.
    secret_key: str | None = None
    secret_key_file: Path = Path(".flywheel-secret")
    default_workspace: str = "default"
    #: Largest inbound webhook body accepted (bytes); larger answers 413.
    max_hook_body: int = 1_000_000
    #: gunicorn worker processes for ``flywheel serve``
    web_workers: int = 2
    #: TOML file whose keys override the packaged scoring defaults (``FLYWHEEL_SCORING_CONFIG``).
    scoring_config: Path | None = None
    #: TOML file replacing reward rules (``FLYWHEEL_PROGRAMS_CONFIG``; defaults: plugin/programs.toml).
    programs_config: Path | None = None
    #: CIDRs outgoing webhooks may reach although they are not public (tests, development).
    webhook_allowed_networks: str = ""
    #: Plain http:// webhook URLs; allowed on the embedded SQLite default (development), refused in
    #: production unless FLYWHEEL_WEBHOOK_ALLOW_HTTP=1.
    webhook_allow_http: bool = False
    #: Seconds before each attempt (FLYWHEEL_WEBHOOK_SCHEDULE); empty: the Standard Webhooks schedule.
    webhook_schedule: tuple[float, ...] = ()
    webhook_timeout: float = 15.0
    #: Days a fully delivered webhook message is kept (then the worker prunes it); failed ones stay.
    webhook_retention_days: int = 30
    #: Extra trust roots (a PEM file) for webhook receivers with a private CA.
    webhook_ca_bundle: str | None = None
    #: Where people reach this Flywheel (links in webhook payloads), e.g. https://flywheel.example.com
    public_url: str | None = None
    #: Who may frame the CRM embed page (FLYWHEEL_CRM_FRAME_ANCESTORS): CSP frame-ancestors sources,
    #: space-separated, e.g. ``https://*.lightning.force.com https://*.vf.force.com``; default none.
    crm_frame_ancestors: str = "'none'"
    #: Rate-limit counters (FLYWHEEL_RATE_LIMIT_STORAGE): memory:// per process, or redis://host:6379
    #: so that every web worker shares them.
    rate_limit_storage: str = "memory://"
    #: Per API token (FLYWHEEL_API_RATE_LIMIT), per client address on sign-in (..._SIGNIN_...) and
    #: per sending address on inbound hooks (..._HOOKS_...), in flask-limiter's notation.
    api_rate_limit: str = "1200 per minute"
    signin_rate_limit: str = "10 per minute"
    hooks_rate_limit: str = "2000 per second"
    #: Session cookies only over HTTPS (FLYWHEEL_COOKIE_SECURE); on by default except on the embedded
    #: SQLite default without an https FLYWHEEL_PUBLIC_URL, where the dashboard is plain local http.
    cookie_secure: bool = True
    #: Reverse proxies in front of `flywheel serve` (FLYWHEEL_TRUSTED_PROXIES, e.g. 1): their
    #: X-Forwarded-For/-Proto name the client and the scheme. 0 (default): headers are ignored.
    trusted_proxies: int = 0
    #: Celery broker (FLYWHEEL_BROKER_URL), e.g. redis://127.0.0.1:6379/0 or amqp://guest@127.0.0.1//.
    #: Unset: `flywheel worker` runs every job in its own process (the embedded default).
    broker_url: str | None = None
    #: How often the schedule is looked at for due jobs (FLYWHEEL_TICK_SECONDS).
    tick_s: float = 5.0
    #: A running job's lease (FLYWHEEL_JOB_LEASE_SECONDS), renewed every third of it while it works;
    #: a dead worker's job runs again once it is over.
    job_lease_s: float = 300.0
    #: A job sent to the broker but not started by then is sent again (FLYWHEEL_JOB_REQUEUE_SECONDS):
    #: a broker that lost its queue (a restart without persistence) costs this long, nothing more.
    job_requeue_s: float = 120.0
    #: The lease of one CRM connection's sync or pull (FLYWHEEL_CRM_LEASE_SECONDS), renewed per batch.
    crm_lease_s: float = 1800.0
    #: A folder of per-workspace folders of activity files the ``inbox`` job pulls in
    #: (FLYWHEEL_INBOX_DIR); unset: no inbox.
    inbox_dir: Path | None = None
    #: Log lines as plain text or one JSON object a line (FLYWHEEL_LOG_FORMAT=text|json), at this
    #: level and above (FLYWHEEL_LOG_LEVEL: DEBUG, INFO, WARNING, ERROR, CRITICAL).
    log_format: str = "text"
    log_level: str = "INFO"
    #: When set (FLYWHEEL_METRICS_TOKEN), GET /metrics asks for ``Authorization: Bearer <token>``.
    metrics_token: str | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def redacted_database_url(self) -> str:
        """The database URL with any password replaced, for logs and status output."""
        from sqlalchemy.engine import make_url

        return make_url(self.database_url).render_as_string(hide_password=True)


def beside_database(url: str, name: str) -> str:
    """A file next to the SQLite database (so every command finds the same key wherever it runs)."""
    from sqlalchemy.engine import make_url

    database = make_url(url).database if url.startswith("sqlite") else None
    if database and database != ":memory:":
        return str(Path(database).expanduser().parent / name)
    return name


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    url = env.get("FLYWHEEL_DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgres://")
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if not (url.startswith("sqlite") or url.startswith("postgresql")):
        raise ConfigError(
            "FLYWHEEL_DATABASE_URL must be a sqlite:// or postgresql:// URL, "
            f"got scheme {url.split(':')[0]!r}",
            hint="unset it to use the embedded SQLite file, or set postgresql://user@host:5432/db",
        )
    max_body = env.get("FLYWHEEL_MAX_HOOK_BODY", "1000000")
    try:
        max_hook_body = int(max_body)
    except ValueError:
        raise ConfigError("FLYWHEEL_MAX_HOOK_BODY must be a whole number of bytes") from None
    try:
        web_workers = max(1, int(env.get("FLYWHEEL_WEB_WORKERS", "2")))
    except ValueError:
        raise ConfigError("FLYWHEEL_WEB_WORKERS must be a whole number") from None
    webhooks = _webhook_settings(env, url)
    key_file = Path(env.get("FLYWHEEL_SECRET_KEY_FILE") or beside_database(url, ".flywheel-secret"))
    return Settings(
        database_url=url,
        secret_key=env.get("FLYWHEEL_SECRET_KEY") or None,
        secret_key_file=key_file,
        default_workspace=env.get("FLYWHEEL_WORKSPACE", "default"),
        max_hook_body=max_hook_body,
        web_workers=web_workers,
        scoring_config=Path(env["FLYWHEEL_SCORING_CONFIG"]) if env.get("FLYWHEEL_SCORING_CONFIG") else None,
        public_url=(env.get("FLYWHEEL_PUBLIC_URL") or "").rstrip("/") or None,
        crm_frame_ancestors=frame_ancestors(env.get("FLYWHEEL_CRM_FRAME_ANCESTORS", "")),
        programs_config=Path(env["FLYWHEEL_PROGRAMS_CONFIG"])
        if env.get("FLYWHEEL_PROGRAMS_CONFIG")
        else None,
        broker_url=_broker(env),
        inbox_dir=Path(env["FLYWHEEL_INBOX_DIR"]).expanduser() if env.get("FLYWHEEL_INBOX_DIR") else None,
        **_job_settings(env),
        metrics_token=env.get("FLYWHEEL_METRICS_TOKEN", "").strip() or None,
        **_log_settings(env),
        **webhooks,
        **_web_settings(env, url),
    )


def _job_settings(env: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, field, default, low in (
        ("FLYWHEEL_TICK_SECONDS", "tick_s", 5.0, 0.05),
        ("FLYWHEEL_JOB_LEASE_SECONDS", "job_lease_s", 300.0, 1.0),
        ("FLYWHEEL_JOB_REQUEUE_SECONDS", "job_requeue_s", 120.0, 1.0),
        ("FLYWHEEL_CRM_LEASE_SECONDS", "crm_lease_s", 1800.0, 1.0),
    ):
        raw = env.get(name, "").strip()
        try:
            value = float(raw) if raw else default
        except ValueError:
            value = -1.0
        if not low <= value <= 86_400:
            raise ConfigError(
                f"{name} must be a number of seconds from {low:g} to 86400", hint=f"e.g. {name}={default:g}"
            )
        out[field] = value
    return out


def _broker(env: dict[str, str]) -> str | None:
    url = env.get("FLYWHEEL_BROKER_URL", "").strip()
    if url and url.split("://")[0] not in ("redis", "rediss", "amqp", "amqps", "pyamqp", "memory"):
        raise ConfigError(
            f"FLYWHEEL_BROKER_URL must be a redis:// or amqp:// URL, got scheme {url.split(':')[0]!r}",
            hint="e.g. FLYWHEEL_BROKER_URL=redis://127.0.0.1:6379/0, or unset it to run jobs in-process",
        )
    return url or None


LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_settings(env: dict[str, str]) -> dict[str, Any]:
    fmt = env.get("FLYWHEEL_LOG_FORMAT", "").strip().lower() or "text"
    if fmt not in LOG_FORMATS:
        raise ConfigError(
            f"FLYWHEEL_LOG_FORMAT must be text or json, got {fmt!r}",
            hint="FLYWHEEL_LOG_FORMAT=json for one JSON object a line (log collectors), or unset it",
        )
    level = env.get("FLYWHEEL_LOG_LEVEL", "").strip().upper() or "INFO"
    level = "WARNING" if level == "WARN" else level
    if level not in LOG_LEVELS:
        raise ConfigError(
            f"FLYWHEEL_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {level!r}",
            hint="e.g. FLYWHEEL_LOG_LEVEL=INFO (the default), or DEBUG while investigating",
        )
    return {"log_format": fmt, "log_level": level}


def _web_settings(env: dict[str, str], url: str) -> dict[str, Any]:
    public = env.get("FLYWHEEL_PUBLIC_URL", "")
    secure = env.get("FLYWHEEL_COOKIE_SECURE", "").strip().lower()
    local = url.startswith("sqlite") and not public.startswith("https://")
    return {
        "rate_limit_storage": env.get("FLYWHEEL_RATE_LIMIT_STORAGE", "").strip() or "memory://",
        "api_rate_limit": env.get("FLYWHEEL_API_RATE_LIMIT", "").strip() or "1200 per minute",
        "signin_rate_limit": env.get("FLYWHEEL_SIGNIN_RATE_LIMIT", "").strip() or "10 per minute",
        "hooks_rate_limit": env.get("FLYWHEEL_HOOKS_RATE_LIMIT", "").strip() or "2000 per second",
        "cookie_secure": secure in ("1", "true", "yes") if secure else not local,
        "trusted_proxies": _count(env, "FLYWHEEL_TRUSTED_PROXIES"),
    }


def _count(env: dict[str, str], name: str) -> int:
    raw = env.get(name, "").strip() or "0"
    if not raw.isdigit() or int(raw) > 10:
        raise ConfigError(f"{name} must be a number of proxies from 0 to 10", hint=f"e.g. {name}=1")
    return int(raw)


def _webhook_settings(env: dict[str, str], url: str) -> dict[str, Any]:
    allow_http = env.get("FLYWHEEL_WEBHOOK_ALLOW_HTTP", "").strip().lower()
    try:
        schedule = tuple(float(p) for p in env.get("FLYWHEEL_WEBHOOK_SCHEDULE", "").split(",") if p.strip())
        timeout = float(env.get("FLYWHEEL_WEBHOOK_TIMEOUT", "15"))
    except ValueError:
        raise ConfigError(
            "FLYWHEEL_WEBHOOK_SCHEDULE and FLYWHEEL_WEBHOOK_TIMEOUT are seconds",
            hint="e.g. FLYWHEEL_WEBHOOK_SCHEDULE=0,5,300,1800 and FLYWHEEL_WEBHOOK_TIMEOUT=15",
        ) from None
    try:
        retention = int(env.get("FLYWHEEL_WEBHOOK_RETENTION_DAYS", "30"))
    except ValueError:
        raise ConfigError("FLYWHEEL_WEBHOOK_RETENTION_DAYS must be a whole number of days") from None
    if any(s < 0 for s in schedule) or not 0 < timeout <= 60:
        raise ConfigError("webhook waits must be ≥ 0 s and the timeout between 0 and 60 s")
    return {
        "webhook_allowed_networks": env.get("FLYWHEEL_WEBHOOK_ALLOWED_NETWORKS", "").strip(),
        "webhook_allow_http": allow_http in ("1", "true", "yes") if allow_http else url.startswith("sqlite"),
        "webhook_schedule": schedule,
        "webhook_timeout": timeout,
        "webhook_ca_bundle": env.get("FLYWHEEL_WEBHOOK_CA_BUNDLE") or None,
        "webhook_retention_days": max(1, retention),
    }


_KEYWORD_SOURCES = ("'none'", "'self'")
_FRAME_SOURCE = re.compile(r"^https?:(//(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:(\d{1,5}|\*))?)?$")


def frame_ancestors(value: str) -> str:
    """CSP ``frame-ancestors`` sources from a space-separated list: origins (a leading ``*.`` for
    subdomains; ``https:`` for any https page), ``'self'``, or ``'none'`` (the default, when empty).
    Anything else is refused, so no other directive can be slipped into the header."""
    sources = value.split()
    if not sources:
        return "'none'"
    bad = [s for s in sources if s.lower() not in _KEYWORD_SOURCES and not _FRAME_SOURCE.match(s)]
    if bad or ("'none'" in (s.lower() for s in sources) and len(sources) > 1):
        raise ConfigError(
            f"FLYWHEEL_CRM_FRAME_ANCESTORS has sources a browser would not accept: {' '.join(bad) or value}",
            hint="space-separated origins, e.g. 'https://*.lightning.force.com https://*.vf.force.com', "
            "or 'none' alone",
        )
    return " ".join(s.lower() if s.lower() in _KEYWORD_SOURCES else s for s in sources)
