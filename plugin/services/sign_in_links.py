"""One-time dashboard sign-in links for the person at the terminal (``flywheel dashboard``): signed
with a key derived from the installation's secret, valid for minutes, and spent by the first
sign-in after they were made (a user's ``last_login_at`` later than the link's time)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import Connection, insert, or_, select, update

from plugin.db.models import User
from plugin.services import users
from plugin.services.secrets import derived_key
from plugin.settings import Settings

VALID_FOR = timedelta(minutes=10)


def _signer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(derived_key(settings, "dashboard-sign-in-link"), salt="sign-in")


def make_link_token(settings: Settings, user_id: int, now: datetime) -> str:
    return _signer(settings).dumps({"u": user_id, "t": int(now.timestamp() * 1000)})


def spend(conn: Connection, settings: Settings, token: str, now: datetime) -> int | None:
    """The user a fresh, unspent link signs in, else None. Spending records the sign-in in the
    same statement that checks the link is unspent, so two requests cannot both use it."""
    try:
        data = _signer(settings).loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int) or not isinstance(data.get("t"), int):
        return None
    made = datetime.fromtimestamp(data["t"] / 1000, tz=now.tzinfo)
    if not (made <= now < made + VALID_FOR):
        return None
    spent = conn.execute(
        update(User)
        .where(
            User.id == data["u"],
            User.disabled_at.is_(None),
            or_(User.last_login_at.is_(None), User.last_login_at < made),
        )
        .values(last_login_at=now)
    )
    return int(data["u"]) if spent.rowcount == 1 else None


def operator(conn: Connection, workspace_id: int, slug: str) -> int:
    """The workspace's first admin user; created (with a random password nobody knows: they sign
    in by link, or an admin sets one later) when the workspace has none."""
    found = conn.execute(
        select(User.id)
        .where(User.workspace_id == workspace_id, User.role == "admin", User.disabled_at.is_(None))
        .order_by(User.id)
    ).scalar()
    if found is not None:
        return int(found)
    email = f"owner@{slug}.flywheel.invalid"  # .invalid: a reserved name that can never receive mail
    row = conn.execute(
        insert(User).values(
            workspace_id=workspace_id,
            email=email,
            name="Owner",
            role="admin",
            password_hash=users.HASHER.hash(secrets.token_urlsafe(32)),
        )
    )
    return int(row.inserted_primary_key[0])  # type: ignore[index]
