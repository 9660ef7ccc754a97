"""What each role may do: least privilege, one table for the API, the dashboard and the tests.

- sales read members, activities, organizations, scores and signals;
- researchers also see research consent and build, draw and export panels;
- marketers also run referrals and rewards, invite advocates and see panels;
- admins do everything, including connections, tokens, users, webhooks and GDPR actions.
"""

from __future__ import annotations

from plugin.db.models.workspace import ROLES

READ = frozenset({"members:read", "activities:read", "organizations:read", "scores:read"})

PERMISSIONS: dict[str, frozenset[str]] = {
    "sales": READ,
    "researcher": READ | {"consent:research", "panels:read", "panels:write", "panels:export"},
    "marketer": READ
    | {
        "consent:marketing",
        "referrals:read",
        "referrals:write",
        "rewards:read",
        "rewards:write",
        "panels:read",
    },
}
PERMISSIONS["admin"] = frozenset().union(*PERMISSIONS.values()) | {
    "consent:write",
    "members:merge",
    "webhooks:manage",
    "connections:manage",
    "tokens:manage",
    "gdpr",
}
assert set(PERMISSIONS) == set(ROLES)

ALL = frozenset().union(*PERMISSIONS.values())


def allowed(role: str, permission: str) -> bool:
    if permission not in ALL:
        raise KeyError(f"unknown permission {permission!r}")  # a typo in a route is a bug, not a 403
    return permission in PERMISSIONS.get(role, frozenset())


def roles_with(permission: str) -> list[str]:
    """The roles that hold a permission, for error messages ("admin or marketer may")."""
    return [role for role in ROLES if permission in PERMISSIONS[role]]
