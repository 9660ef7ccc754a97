"""Per-workspace signing secrets of the inbound webhook receivers, encrypted at rest."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from connectors.errors import SignatureError
from connectors.sources.signatures import standard_webhooks_key
from plugin.db.models import HookSecret, Workspace
from plugin.errors import AuthError, ValidationFailed
from plugin.services.secrets import decrypt, encrypt
from plugin.settings import Settings

HOOK_SOURCES = ("github", "discourse", "slack")


def check_source(source: str) -> None:
    if source in HOOK_SOURCES:
        return
    name = source.removeprefix("generic:")
    if source.startswith("generic:") and name and name.replace("-", "").replace("_", "").isalnum():
        return
    raise ValidationFailed(
        f"unknown hook source {source!r}", fields={"source": "github, discourse, slack or generic:NAME"}
    )


def set_hook_secret(session: Session, settings: Settings, workspace_id: int, source: str, value: str) -> None:
    check_source(source)
    if len(value) < 16:
        raise ValidationFailed("the secret is too short", fields={"secret": "at least 16 characters"})
    if source.startswith("generic:"):
        try:
            standard_webhooks_key(value)
        except SignatureError:
            raise ValidationFailed(
                "a generic receiver's secret is a Standard Webhooks secret",
                fields={
                    "secret": "whsec_ followed by base64, e.g. as `flywheel hooks secret generic:NAME` makes"
                },
            ) from None
    row = session.scalar(
        select(HookSecret).where(HookSecret.workspace_id == workspace_id, HookSecret.source == source)
    )
    if row is None:
        session.add(
            HookSecret(workspace_id=workspace_id, source=source, secret_encrypted=encrypt(settings, value))
        )
    else:
        row.secret_encrypted = encrypt(settings, value)


def get_hook_secret(session: Session, settings: Settings, workspace_id: int, source: str) -> str:
    row = session.scalar(
        select(HookSecret).where(HookSecret.workspace_id == workspace_id, HookSecret.source == source)
    )
    if row is None:
        # Same answer as a bad signature: a caller cannot learn which sources are configured.
        raise AuthError("signature cannot be verified", hint=f"set one with `flywheel hooks secret {source}`")
    return decrypt(settings, row.secret_encrypted)


class HookSecretCache:
    """(workspace id, secret) of a workspace slug and source, as the receivers look them up on every
    request: read from the database at most once per ``ttl`` seconds per key in each process. A
    missing workspace or secret (None) is kept just as long, so a forged request costs the same
    whether or not anything is configured. A new or rotated secret is in force within ``ttl``."""

    def __init__(self, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[tuple[str, str], tuple[float, tuple[int, str] | None]] = {}
        self._lock = threading.Lock()

    def lookup(self, engine: Engine, settings: Settings, slug: str, source: str) -> tuple[int, str] | None:
        key = (slug, source)
        now = self.clock()
        entry = self._entries.get(key)
        if entry is not None and now - entry[0] < self.ttl:
            return entry[1]
        found = self._load(engine, settings, slug, source)
        with self._lock:
            if len(self._entries) > 10_000:  # any slug can be asked for: bound what they cost
                self._entries.clear()
            self._entries[key] = (now, found)
        return found

    @staticmethod
    def _load(engine: Engine, settings: Settings, slug: str, source: str) -> tuple[int, str] | None:
        with Session(engine) as session:
            workspace_id = session.scalar(select(Workspace.id).where(Workspace.slug == slug))
            if workspace_id is None:
                return None
            try:
                return workspace_id, get_hook_secret(session, settings, workspace_id, source)
            except AuthError:
                return None
