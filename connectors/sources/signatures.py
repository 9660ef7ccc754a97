"""Signature checks for inbound webhooks, over the raw request bytes, in constant time.

Each platform signs differently:

* GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>``.
* Discourse: ``X-Discourse-Event-Signature: sha256=<hex HMAC-SHA256(secret, body)>``; no timestamp,
  replays are caught by the delivery id (``X-Discourse-Event-Id``).
* Slack: ``X-Slack-Signature: v0=<hex HMAC-SHA256(secret, "v0:" + timestamp + ":" + body)>`` with
  ``X-Slack-Request-Timestamp``; requests older than five minutes are refused.
* Standard Webhooks (generic sources): ``webhook-signature: v1,<base64 HMAC-SHA256(key, id.ts.body)>``
  where the key is the base64 text after ``whsec_``; several space-separated signatures may be sent
  during a key rotation, any one matching is enough; a five-minute timestamp window.

Every failure raises :class:`SignatureError` with a reason fit to show the sender; the secret and the
expected value never appear in it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import datetime

from connectors.errors import SignatureError

#: How far a signed timestamp may be from our clock (Slack's and Standard Webhooks' five minutes).
TIMESTAMP_TOLERANCE_S = 5 * 60


def _hmac_hex(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def _check_prefixed_hex(header: str | None, prefix: str, expected_hex: str, header_name: str) -> None:
    if not header:
        raise SignatureError(f"missing {header_name} header")
    if not header.startswith(prefix):
        raise SignatureError(f"{header_name} must start with {prefix!r}")
    if not hmac.compare_digest(header[len(prefix) :].strip().lower().encode(), expected_hex.encode()):
        raise SignatureError(f"{header_name} does not match the body")


def verify_github(secret: str, body: bytes, signature_header: str | None) -> None:
    expected = _hmac_hex(secret.encode(), body)
    _check_prefixed_hex(signature_header, "sha256=", expected, "X-Hub-Signature-256")


def verify_discourse(secret: str, body: bytes, signature_header: str | None) -> None:
    expected = _hmac_hex(secret.encode(), body)
    _check_prefixed_hex(signature_header, "sha256=", expected, "X-Discourse-Event-Signature")


def _check_timestamp(raw: str | None, now: datetime, header_name: str) -> str:
    if not raw:
        raise SignatureError(f"missing {header_name} header")
    try:
        stamp = int(raw.strip()[:20])  # a Unix time has at most a dozen digits
        drift = abs(now.timestamp() - stamp)
    except (ValueError, OverflowError):
        raise SignatureError(f"{header_name} is not a Unix timestamp") from None
    if drift > TIMESTAMP_TOLERANCE_S:
        raise SignatureError(f"{header_name} is more than five minutes from now; refusing a possible replay")
    return raw.strip()


def verify_slack(
    secret: str, body: bytes, timestamp_header: str | None, signature_header: str | None, now: datetime
) -> None:
    stamp = _check_timestamp(timestamp_header, now, "X-Slack-Request-Timestamp")
    expected = _hmac_hex(secret.encode(), b"v0:" + stamp.encode() + b":" + body)
    _check_prefixed_hex(signature_header, "v0=", expected, "X-Slack-Signature")


def standard_webhooks_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret (base64 after the prefix)."""
    text = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("the configured Standard Webhooks secret is not base64 after 'whsec_'") from None


def standard_webhooks_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """``v1,<base64 signature>`` for one message, as a sender would put in ``webhook-signature``."""
    mac = hmac.new(standard_webhooks_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def verify_standard_webhooks(
    secret: str,
    body: bytes,
    msg_id: str | None,
    timestamp_header: str | None,
    signature_header: str | None,
    now: datetime,
) -> None:
    if not msg_id:
        raise SignatureError("missing webhook-id header")
    stamp = _check_timestamp(timestamp_header, now, "webhook-timestamp")
    if not signature_header:
        raise SignatureError("missing webhook-signature header")
    expected = standard_webhooks_signature(secret, msg_id, stamp, body).encode()
    for candidate in signature_header.split():
        version, _, _value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(candidate.encode(), expected):
            return
    raise SignatureError("no webhook-signature matches the body")
