"""Per-workspace signing secrets of the inbound webhook receivers, encrypted at rest."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.errors import SignatureError
from connectors.sources.signatures import standard_webhooks_key
from plugin.db.models import HookSecret
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
