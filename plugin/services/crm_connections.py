"""CRM connections: stored with their credentials encrypted, turned into adapters, and leased so
that two syncs of one CRM never overlap."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import requests
from simple_salesforce.exceptions import SalesforceAuthenticationFailed
from sqlalchemy import Engine, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from connectors.crm.hubspot import HubSpotAdapter
from connectors.errors import CrmAuthError, CrmError, CrmRateLimited, CrmRejected, CrmUnavailable
from plugin.db.base import utcnow
from plugin.db.models import CrmCompanyLink, CrmConnection, CrmDeal, CrmLink, CrmSyncRun, ScoreEvent
from plugin.errors import (
    AuthError,
    Busy,
    ConfigError,
    FlywheelError,
    NotFound,
    PermanentError,
    TransientError,
    ValidationFailed,
)
from plugin.services.gdpr import account_changed
from plugin.services.secrets import decrypt, encrypt
from plugin.settings import Settings, beside_database

KINDS = ("hubspot", "salesforce")
# Renewed after every batch; long enough to cover one Bulk API job or a paced phase between
# renewals; a dead process's lease runs out after it.
LEASE = timedelta(minutes=30)
HubSpotFactory = Callable[..., HubSpotAdapter]


def crm_error(exc: CrmError, kind: str) -> FlywheelError:
    """A connector's CRM error as the plugin's, with what the user should do next."""
    name = "HubSpot" if kind == "hubspot" else "Salesforce"
    if isinstance(exc, CrmAuthError):
        return AuthError(
            f"{name} refused the credentials: {exc}",
            hint=f"create a new token and run `flywheel crm connect {kind}` again",
        )
    if isinstance(exc, CrmRateLimited) and exc.daily:
        return TransientError(
            f"{name}'s daily API limit is reached: {exc}",
            hint="the sync stopped before failing records; run it again tomorrow or raise the limit",
        )
    if isinstance(exc, CrmRateLimited | CrmUnavailable):
        return TransientError(
            f"{name} is not answering well: {exc}", hint="run the sync again in a few minutes"
        )
    if isinstance(exc, CrmRejected):
        return PermanentError(
            f"{name} refused the request: {exc}", hint="check the field mapping and `flywheel crm check`"
        )
    return TransientError(
        f"{name}: {exc}", hint="run the sync again; if it persists, see `flywheel crm check`"
    )


def save_connection(
    engine: Engine,
    settings: Settings,
    workspace_id: int,
    kind: str,
    credentials: dict[str, Any],
    base_url: str | None,
) -> CrmConnection:
    """Store (or replace) the workspace's connection of this kind; credentials encrypted."""
    sealed = encrypt(settings, orjson.dumps(credentials).decode())
    with Session(engine, expire_on_commit=False) as session, session.begin():
        row = session.scalars(
            select(CrmConnection).where(
                CrmConnection.workspace_id == workspace_id, CrmConnection.kind == kind
            )
        ).first()
        if row is None:
            row = CrmConnection(workspace_id=workspace_id, kind=kind)
            session.add(row)
        elif row.base_url != base_url or _old_credentials(settings, row) != credentials:
            _forget_account(session, row)
        row.credentials_encrypted = sealed
        row.base_url = base_url
        row.checked_at = utcnow()
    return row


def _old_credentials(settings: Settings, row: CrmConnection) -> dict[str, Any] | None:
    try:
        return credentials_of(settings, row)
    except ConfigError:  # sealed with a key since changed: treat as different
        return None


def _forget_account(session: Session, row: CrmConnection) -> None:
    """New credentials or another address may be another CRM account: what was sent to the old
    one (record ids, hashes, company ids, deals) says nothing about the new one, so every member
    is sent again on the next sync (upserts by email and companies found by domain create nothing
    twice if it is the same account). Past signals are not noted again: notes start from now.
    Pending erasures of the old account's records are closed, never sent to the new account."""
    for model in (CrmLink, CrmCompanyLink, CrmDeal):
        session.execute(delete(model).where(model.connection_id == row.id))
    account_changed(session.connection(), row.workspace_id, row.id)
    latest = session.execute(
        select(func.coalesce(func.max(ScoreEvent.id), 0)).where(ScoreEvent.workspace_id == row.workspace_id)
    ).scalar_one()
    row.events_noted = int(latest)


def load_connection(engine: Engine, workspace_id: int, kind: str | None = None) -> CrmConnection:
    with Session(engine, expire_on_commit=False) as session:
        query = select(CrmConnection).where(CrmConnection.workspace_id == workspace_id)
        if kind:
            query = query.where(CrmConnection.kind == kind)
        rows = session.scalars(query.order_by(CrmConnection.id)).all()
    if not rows:
        raise NotFound(
            f"no {kind or 'CRM'} connection in this workspace",
            hint="connect one with `flywheel crm connect hubspot --token ...`",
        )
    if len(rows) > 1:
        raise NotFound(
            "this workspace has several CRM connections",
            hint="say which with --crm hubspot or --crm salesforce",
        )
    return rows[0]


def credentials_of(settings: Settings, row: CrmConnection) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(decrypt(settings, row.credentials_encrypted))
    return data


def hubspot_adapter(
    settings: Settings, row: CrmConnection, factory: HubSpotFactory = HubSpotAdapter, **kwargs: Any
) -> HubSpotAdapter:
    return factory(credentials_of(settings, row)["token"], host=row.base_url, **kwargs)


SANDBOX = "sandbox:"  # base_url prefix of a test-mode connection: the sandbox's state file follows


def sandbox_state_path(settings: Settings) -> Path:
    """Where a test-mode CRM keeps its state: beside the SQLite database; with PostgreSQL beside the
    secret key file, named for the database, so two databases never share one sandbox."""
    if settings.is_sqlite:
        return Path(beside_database(settings.database_url, "flywheel-hubspot-sandbox.json"))
    tag = hashlib.sha256(settings.redacted_database_url().encode()).hexdigest()[:12]
    return settings.secret_key_file.parent / f"flywheel-hubspot-sandbox-{tag}.json"


#: The requests session simple-salesforce logs in and calls with (None: its own). Tests point it at
#: the Salesforce fake; a proxy or a private CA would go here too.
def salesforce_session() -> requests.Session | None:
    return None


def salesforce_client(credentials: dict[str, Any], instance_url: str | None) -> Any:
    """A logged-in simple-salesforce client for one of the three flows the credentials name."""
    from simple_salesforce.api import Salesforce

    mode, session = credentials.get("mode"), salesforce_session()
    domain = credentials.get("domain") or None
    try:
        if mode == "password":
            return Salesforce(
                username=credentials["username"],
                password=credentials["password"],
                security_token=credentials.get("security_token") or "",
                domain=domain,
                session=session,
            )
        if mode == "jwt":
            return Salesforce(
                username=credentials["username"],
                consumer_key=credentials["client_id"],
                privatekey=credentials["private_key"],
                domain=domain,
                session=session,
            )
        if mode == "client_credentials":
            return Salesforce(
                consumer_key=credentials["client_id"],
                consumer_secret=credentials["client_secret"],
                domain=domain,
                session=session,
            )
    except SalesforceAuthenticationFailed as exc:
        raise CrmAuthError("Salesforce refused the login (check the user, password, token or app)") from exc
    except requests.exceptions.RequestException as exc:
        raise CrmUnavailable(f"cannot reach Salesforce to log in ({type(exc).__name__})") from exc
    raise ConfigError(
        f"unknown Salesforce login mode {mode!r}", hint="connect again with `flywheel crm connect salesforce`"
    )


@contextmanager
def adapter_for(settings: Settings, row: CrmConnection, given: Any = None) -> Iterator[Any]:
    """``given`` (a test's adapter), or the connection's own opened for the block; a failure to
    open it (Salesforce's login, the sandbox's start) comes out as the plugin's error."""
    if given is not None:
        yield given
        return
    with ExitStack() as stack:
        try:
            opened = stack.enter_context(open_adapter(settings, row))
        except CrmError as exc:
            raise crm_error(exc, row.kind) from exc
        yield opened


@contextmanager
def open_adapter(settings: Settings, row: CrmConnection, **kwargs: Any) -> Iterator[Any]:
    """The connection's adapter for the length of a ``with`` block. A test-mode connection
    (``flywheel crm connect hubspot --sandbox``) starts the HubSpot sandbox on loopback with its
    saved state, and saves the state again at the end, so the next command sees what this one wrote."""
    if row.kind == "salesforce":
        from connectors.crm.salesforce import SalesforceAdapter

        yield SalesforceAdapter(salesforce_client(credentials_of(settings, row), row.base_url), **kwargs)
        return
    if not (row.base_url or "").startswith(SANDBOX):
        yield hubspot_adapter(settings, row, **kwargs)
        return
    from plugin.sandbox.hubspot import HubSpotSandbox
    from plugin.sandbox.hubspot_store import HubSpotStore

    path = Path((row.base_url or "")[len(SANDBOX) :])
    store = HubSpotStore()
    if path.exists():
        store.load(path)
    token = credentials_of(settings, row)["token"]
    with HubSpotSandbox((token,), store=store) as sandbox:
        try:
            yield HubSpotAdapter(token, host=sandbox.base_url, **kwargs)
        finally:
            store.save(path)


#: The lease length for this sync or pull (FLYWHEEL_CRM_LEASE_SECONDS), set by its entry point.
_lease: ContextVar[timedelta] = ContextVar("crm_lease", default=LEASE)


@contextmanager
def lease_length(seconds: float) -> Iterator[None]:
    token = _lease.set(timedelta(seconds=seconds))
    try:
        yield
    finally:
        _lease.reset(token)


def acquire_lease(engine: Engine, connection_id: int, holder: str, now: datetime | None = None) -> None:
    """Take the connection's lease or say who holds it until when."""
    now = now or utcnow()
    c = CrmConnection
    with engine.begin() as conn:
        taken = conn.execute(
            update(c)
            .where(
                c.id == connection_id,
                or_(c.lock_holder.is_(None), c.lock_expires_at < now, c.lock_holder == holder),
            )
            .values(lock_holder=holder, lock_expires_at=now + _lease.get())
        ).rowcount
        if taken == 1:
            return
        row = conn.execute(select(c.lock_holder, c.lock_expires_at).where(c.id == connection_id)).one()
    raise Busy(
        f"another sync of this CRM is running ({row[0]}, lease until {row[1]:%Y-%m-%d %H:%M:%S} UTC)",
        hint="wait for it to finish; a stopped process's lease runs out by itself at that time",
    )


def renew_lease(conn: Any, connection_id: int, holder: str) -> None:
    """Extend this process's lease; if it ran out and another took it, stop here (raise) rather
    than write beside it."""
    c = CrmConnection
    renewed = conn.execute(
        update(c)
        .where(c.id == connection_id, c.lock_holder == holder)
        .values(lock_expires_at=utcnow() + _lease.get())
    ).rowcount
    if renewed != 1:
        raise TransientError(
            "this sync lost its lease on the CRM connection (another sync took over after a long pause)",
            hint="nothing was lost: run `flywheel crm sync` again once the other one is done",
        )


def release_lease(engine: Engine, connection_id: int, holder: str) -> None:
    c = CrmConnection
    with engine.begin() as conn:
        conn.execute(
            update(c)
            .where(c.id == connection_id, c.lock_holder == holder)
            .values(lock_holder=None, lock_expires_at=None)
        )


def connect_hubspot_account(
    engine: Engine,
    settings: Settings,
    workspace_id: int,
    *,
    token: str | None,
    base_url: str | None = None,
    sandbox: bool = False,
) -> CrmConnection:
    """Check the token with one call, then store the connection (token encrypted), replacing the
    workspace's HubSpot connection only once the new one works. ``sandbox``: a test-mode connection
    to the local HubSpot sandbox, with a token made up for it."""
    if sandbox:
        token = token or "sandbox-" + secrets.token_urlsafe(16)
        base_url = SANDBOX + str(sandbox_state_path(settings).resolve())
    if not token:
        raise ConfigError(
            "a HubSpot token is needed", hint="pass --token, set FLYWHEEL_HUBSPOT_TOKEN, or use --sandbox"
        )
    trial = CrmConnection(
        kind="hubspot",
        base_url=base_url,
        credentials_encrypted=encrypt(settings, orjson.dumps({"token": token}).decode()),
    )
    try:
        with open_adapter(settings, trial, max_attempts=3) as adapter:
            adapter.check()
    except CrmError as exc:
        raise crm_error(exc, "hubspot") from exc
    return save_connection(engine, settings, workspace_id, "hubspot", {"token": token}, base_url)


def connect_salesforce_account(
    engine: Engine,
    settings: Settings,
    workspace_id: int,
    credentials: dict[str, Any],
    instance_url: str | None,
) -> CrmConnection:
    """Log in with the credentials and make one call; then store them encrypted."""
    try:
        from connectors.crm.salesforce import SalesforceAdapter

        SalesforceAdapter(salesforce_client(credentials, instance_url), max_attempts=3).check()
    except CrmError as exc:
        raise crm_error(exc, "salesforce") from exc
    return save_connection(engine, settings, workspace_id, "salesforce", credentials, instance_url)


def set_field_mapping(
    engine: Engine, row: CrmConnection, field: str, crm_field: str | None, *, reset: bool = False
) -> CrmConnection:
    """Send Flywheel's ``field`` to ``crm_field`` (None: not at all; ``reset``: the default). The
    next sync sends every member again: their fields' hash changes with the mapping."""
    from plugin.services.crm_fields import FieldMap

    known = FieldMap.from_settings(None).names
    if field not in known:
        raise ValidationFailed(
            f"unknown Flywheel field {field!r}",
            fields={"field": "one of " + ", ".join(known)},
            hint="see `flywheel crm map`",
        )
    settings = dict(row.settings or {})
    fields = dict(settings.get("fields") or {})
    if reset:
        fields.pop(field, None)
    else:
        fields[field] = crm_field
    settings["fields"] = fields
    with Session(engine, expire_on_commit=False) as session, session.begin():
        fresh = session.get(CrmConnection, row.id)
        assert fresh is not None
        fresh.settings = settings
    row.settings = settings
    return row


def start_run(engine: Engine, connection_id: int, direction: str, *, dry_run: bool = False) -> int:
    """A sync or pull run's row, so its counts and calls are kept even when it fails."""
    with engine.begin() as conn:
        run_id: int = conn.execute(
            insert(CrmSyncRun)
            .values(connection_id=connection_id, direction=direction, dry_run=dry_run)
            .returning(CrmSyncRun.id)
        ).scalar_one()
    return run_id


def finish_run(
    conn: Any, run_id: int, status: str, counts: dict[str, int], calls: dict[str, int], error: str | None
) -> None:
    conn.execute(
        update(CrmSyncRun)
        .where(CrmSyncRun.id == run_id)
        .values(status=status, finished_at=utcnow(), counts=counts, calls=calls, error=error)
    )


#: Key of a HubSpot connection's settings holding its CRM card: the portal (HubSpot account) id it
#: answers card requests for and the app's client secret that signs them (encrypted).
CARD = "card"


@dataclass(frozen=True)
class CardApp:
    """The HubSpot connection that answers one portal's CRM card requests, with the app's secret."""

    connection: CrmConnection
    portal_id: str
    client_secret: str = field(repr=False)


def card_portal(row: CrmConnection) -> str | None:
    portal = ((row.settings or {}).get(CARD) or {}).get("portal_id")
    return str(portal) if portal else None


def set_hubspot_card(
    engine: Engine, settings: Settings, row: CrmConnection, portal_id: str | None, client_secret: str | None
) -> CrmConnection:
    """Answer HubSpot CRM card requests from this portal, checked against the app's client secret
    (kept encrypted in the connection's settings); ``portal_id=None`` stops answering. A portal is
    answered by one workspace only."""
    if row.kind != "hubspot":
        raise ValidationFailed("CRM cards are a HubSpot feature", hint="Salesforce uses the embed page")
    new = dict(row.settings or {})
    if portal_id is None:
        new.pop(CARD, None)
    else:
        portal = portal_id.strip()
        if not portal.isdigit():
            raise ValidationFailed("a HubSpot portal id is a number", fields={"portal_id": "digits only"})
        if not client_secret:
            raise ValidationFailed(
                "the HubSpot app's client secret is needed to check card requests",
                fields={"client_secret": "required"},
                hint="find it on the app's Auth page in your HubSpot developer account",
            )
        taken = hubspot_card_app(engine, settings, portal, decrypt_secret=False)
        if taken is not None and taken.connection.id != row.id:
            raise ValidationFailed(
                f"HubSpot portal {portal} already shows another workspace's cards",
                fields={"portal_id": "in use"},
                hint="turn the card off there first: `flywheel crm card hubspot --off -w OTHER`",
            )
        new[CARD] = {"portal_id": portal, "client_secret": encrypt(settings, client_secret)}
    with Session(engine, expire_on_commit=False) as session, session.begin():
        fresh = session.get(CrmConnection, row.id)
        assert fresh is not None
        fresh.settings = new
    row.settings = new
    return row


def hubspot_card_app(
    engine: Engine, settings: Settings, portal_id: str, *, decrypt_secret: bool = True
) -> CardApp | None:
    """The HubSpot connection answering CRM cards for this portal (None: no workspace does)."""
    if not portal_id:
        return None
    with Session(engine, expire_on_commit=False) as session:
        rows = session.scalars(
            select(CrmConnection).where(CrmConnection.kind == "hubspot").order_by(CrmConnection.id)
        ).all()
    for row in rows:
        if card_portal(row) == portal_id:
            sealed = str((row.settings or {})[CARD]["client_secret"])
            return CardApp(row, portal_id, decrypt(settings, sealed) if decrypt_secret else "")
    return None
