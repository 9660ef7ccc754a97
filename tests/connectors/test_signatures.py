"""Inbound signature checks: the platforms' published values, tampering, and round trips."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.errors import SignatureError
from connectors.sources import signatures as sig

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def vectors(shared_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((shared_dir / "data" / "signature-vectors.json").read_text())
    return data


def at(stamp: str) -> datetime:
    return datetime.fromtimestamp(int(stamp), UTC)


def test_published_values_verify(vectors: dict[str, Any]) -> None:
    g, d, s, w = vectors["github"], vectors["discourse"], vectors["slack"], vectors["standard_webhooks"]
    sig.verify_github(g["secret"], g["body"].encode(), g["signature"])
    sig.verify_discourse(d["secret"], d["body"].encode(), d["signature"])
    sig.verify_slack(s["secret"], s["body"].encode(), s["timestamp"], s["signature"], at(s["timestamp"]))
    sig.verify_standard_webhooks(
        w["secret"], w["body"].encode(), w["id"], w["timestamp"], w["signature"], at(w["timestamp"])
    )
    assert (
        sig.standard_webhooks_signature(w["secret"], w["id"], w["timestamp"], w["body"].encode())
        == w["signature"]
    )


def test_published_values_fail_when_anything_changes(vectors: dict[str, Any]) -> None:
    g, s, w = vectors["github"], vectors["slack"], vectors["standard_webhooks"]
    with pytest.raises(SignatureError):
        sig.verify_github(g["secret"] + "x", g["body"].encode(), g["signature"])
    with pytest.raises(SignatureError, match="five minutes"):
        late = at(s["timestamp"]) + timedelta(minutes=6)
        sig.verify_slack(s["secret"], s["body"].encode(), s["timestamp"], s["signature"], late)
    with pytest.raises(SignatureError):
        sig.verify_standard_webhooks(
            w["secret"], w["body"].encode(), "msg_other", w["timestamp"], w["signature"], at(w["timestamp"])
        )


def test_rotation_any_of_several_signatures_is_enough(vectors: dict[str, Any]) -> None:
    w = vectors["standard_webhooks"]
    header = "v1,bm90LXRoZS1yaWdodC1vbmU= " + w["signature"]  # old key's signature first
    sig.verify_standard_webhooks(
        w["secret"], w["body"].encode(), w["id"], w["timestamp"], header, at(w["timestamp"])
    )


@given(secret=st.text(min_size=16, max_size=64), body=st.binary(max_size=512), flip=st.integers(0, 511))
def test_github_round_trip_and_tamper(secret: str, body: bytes, flip: int) -> None:
    header = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    sig.verify_github(secret, body, header)
    if body:
        i = flip % len(body)
        tampered = body[:i] + bytes([body[i] ^ 1]) + body[i + 1 :]
        with pytest.raises(SignatureError):
            sig.verify_github(secret, tampered, header)


@given(
    key=st.binary(min_size=24, max_size=64),
    msg_id=st.text(min_size=1, max_size=40),
    body=st.binary(max_size=256),
)
def test_standard_webhooks_round_trip(key: bytes, msg_id: str, body: bytes) -> None:
    secret = "whsec_" + base64.b64encode(key).decode()
    stamp = str(int(NOW.timestamp()))
    header = sig.standard_webhooks_signature(secret, msg_id, stamp, body)
    sig.verify_standard_webhooks(secret, body, msg_id, stamp, header, NOW)
    with pytest.raises(SignatureError):
        sig.verify_standard_webhooks(secret, body + b"!", msg_id, stamp, header, NOW)


def test_missing_headers_say_which() -> None:
    with pytest.raises(SignatureError, match="X-Hub-Signature-256"):
        sig.verify_github("s" * 20, b"{}", None)
    with pytest.raises(SignatureError, match="X-Slack-Request-Timestamp"):
        sig.verify_slack("s" * 20, b"{}", None, "v0=00", NOW)
    with pytest.raises(SignatureError, match="webhook-id"):
        sig.verify_standard_webhooks("whsec_AAAA", b"{}", None, "1", "v1,x", NOW)
