"""What is kept of a receiver's answer: a short excerpt with anything secret-looking masked.

Receivers sometimes echo what they got, or answer with their own tokens and session ids; the
attempt log is read by people who should see why a delivery failed, not a credential.
"""

from __future__ import annotations

import re

MAX_CHARS = 500
MASK = "[redacted]"

_PATTERNS = (
    # key=value and "key": "value" pairs whose key names a secret
    re.compile(
        r"""(?ix)
        (["']?(?:[a-z0-9_-]*(?:secret|token|password|passwd|api[_-]?key|apikey|authorization|
        signature|session|cookie|credential|private[_-]?key)[a-z0-9_-]*)["']?\s*[:=]\s*)
        ("[^"]*"|'[^']*'|[^\s,;&}]+)
        """
    ),
    re.compile(r"(?i)(bearer|basic)\s+[a-z0-9._~+/=-]+"),
    re.compile(r"whsec_[A-Za-z0-9+/=]+"),
    re.compile(r"\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]+"),
    re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),  # a JWT
    re.compile(r"\b[A-Za-z0-9+/_-]{32,}={0,2}"),  # long opaque strings: keys, hashes, tokens
)


def redact(text: str) -> str:
    # Credentials after an auth scheme first: "Authorization: Bearer x" must lose x, not "Bearer".
    text = _PATTERNS[1].sub(lambda m: m.group(1) + " " + MASK, text)
    text = _PATTERNS[0].sub(lambda m: m.group(1) + MASK, text)
    for pattern in _PATTERNS[2:]:
        text = pattern.sub(MASK, text)
    return text


def excerpt(raw: bytes, limit: int = MAX_CHARS) -> str | None:
    """The start of a response body as text, redacted and cut to ``limit`` characters."""
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    text = redact(text[: limit * 2])
    return text if len(text) <= limit else text[: limit - 1] + "…"
