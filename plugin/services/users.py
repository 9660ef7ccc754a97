"""Dashboard users: Argon2id password hashes (argon2-cffi), sign-in with a per-account lockout."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, insert, select, update

from connectors.records import normalize_email
from plugin.db.models import User
from plugin.db.models.workspace import ROLES
from plugin.errors import AuthError, ValidationFailed

HASHER = PasswordHasher()
MIN_PASSWORD = 12
LOCK_AFTER = 5  # failed sign-ins in a row
LOCK_FOR = timedelta(minutes=15)


@cache
def _dummy() -> str:
    """Verified against when the email is unknown, so a wrong email costs as long as a wrong
    password (made on first use: an Argon2 hash takes a third of a second, not for every import)."""
    return HASHER.hash("flywheel-dummy-password")


def create_user(
    conn: Connection, workspace_id: int, email: str, role: str, password: str, name: str | None = None
) -> int:
    problems: dict[str, str] = {}
    try:
        email = normalize_email(email)
    except ValueError:
        problems["email"] = "not an email address"
    if role not in ROLES:
        problems["role"] = f"one of {', '.join(ROLES)}"
    if len(password) < MIN_PASSWORD:
        problems["password"] = f"at least {MIN_PASSWORD} characters"
    if not problems and conn.execute(select(User.id).where(User.email == email)).first() is not None:
        problems["email"] = "a user with this email exists"
    if problems:
        raise ValidationFailed("the user cannot be created", fields=problems)
    result = conn.execute(
        insert(User).values(
            workspace_id=workspace_id, email=email, role=role, name=name, password_hash=HASHER.hash(password)
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def sign_in(conn: Connection, email: str, password: str, now: datetime) -> int:
    """The user id for a right email and password; AuthError otherwise (the same message whether the
    email or the password was wrong, or the account is locked or disabled)."""
    refused = AuthError("wrong email or password, or the account is locked", hint="try again in 15 minutes")
    try:
        email = normalize_email(email)
    except ValueError:
        raise refused from None
    row = conn.execute(
        select(User.id, User.password_hash, User.locked_until, User.disabled_at).where(User.email == email)
    ).first()
    if row is None:
        _verify(_dummy(), password)
        raise refused
    if row.disabled_at is not None or (row.locked_until is not None and row.locked_until > now):
        _verify(_dummy(), password)
        raise refused
    if not _verify(row.password_hash, password):
        conn.execute(update(User).where(User.id == row.id).values(failed_logins=User.failed_logins + 1))
        failed = conn.execute(select(User.failed_logins).where(User.id == row.id)).scalar_one()
        if failed >= LOCK_AFTER:
            conn.execute(
                update(User).where(User.id == row.id).values(locked_until=now + LOCK_FOR, failed_logins=0)
            )
        raise refused
    values: dict[str, object] = {"failed_logins": 0, "locked_until": None, "last_login_at": now}
    if HASHER.check_needs_rehash(row.password_hash):
        values["password_hash"] = HASHER.hash(password)
    conn.execute(update(User).where(User.id == row.id).values(**values))
    return int(row.id)


def _verify(hashed: str, password: str) -> bool:
    try:
        return HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False
