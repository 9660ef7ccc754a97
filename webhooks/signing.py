"""Standard Webhooks signatures for the messages Flywheel sends (https://www.standardwebhooks.com,
specification v1): three headers, ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and
``webhook-signature``, the last ``v1,`` and the base64 HMAC-SHA256 of ``id.timestamp.body`` under
the key the ``whsec_`` secret carries in base64. The body signed is the exact bytes sent, and the
id is the message's own, the same on every retry, so a receiver can drop a repeat.

During a secret rotation a message carries one signature per live secret, space-separated, as
the specification allows: a receiver holding either secret accepts it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence

PREFIX = "whsec_"
KEY_BYTES = 32  # the specification asks for 24 to 64 bytes of randomness


class SecretError(ValueError):
    """A secret that is not ``whsec_`` and base64: say so without echoing it."""


def new_secret() -> str:
    """A fresh endpoint secret in the specification's format."""
    return PREFIX + base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def new_message_id() -> str:
    """A message id: unique, opaque, stable across retries (the outbox keeps it)."""
    return "msg_" + uuid.uuid4().hex


def _key(secret: str) -> bytes:
    raw = secret.removeprefix(PREFIX)
    try:
        key = base64.b64decode(raw, validate=True)
    except ValueError:
        raise SecretError("a webhook secret must be 'whsec_' followed by base64") from None
    if not key:
        raise SecretError("a webhook secret must not be empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 signature>`` of one message under one secret."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(live_secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers for a message, signed with every live secret (newest first)."""
    if not live_secrets:
        raise SecretError("an endpoint needs at least one secret to sign with")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in live_secrets),
    }
