"""Every message Flywheel signs verifies with the receivers' own libraries (standardwebhooks and
svix), during a rotation too; the specification's published vector reproduces exactly."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook as StandardWebhook
from svix.webhooks import Webhook as SvixWebhook
from svix.webhooks import WebhookVerificationError

from webhooks.signing import SecretError, new_message_id, new_secret, sign, signed_headers


def test_the_published_vector_reproduces_exactly(shared_dir: Path) -> None:
    v = json.loads((shared_dir / "data" / "signature-vectors.json").read_text())["standard_webhooks"]
    assert sign(v["secret"], v["id"], int(v["timestamp"]), v["body"].encode()) == v["signature"]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),  # any script: Hebrew, Arabic...
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@given(JSON)
def test_any_payload_verifies_with_standardwebhooks_and_svix(payload: object) -> None:
    body = json.dumps({"type": "reward.granted", "data": payload}, ensure_ascii=False).encode()
    secret, msg_id, now = new_secret(), new_message_id(), int(time.time())
    headers = signed_headers([secret], msg_id, now, body)
    StandardWebhook(secret).verify(body, headers)  # raises on a bad signature
    SvixWebhook(secret).verify(body, headers)


def test_during_a_rotation_either_secret_verifies_and_a_stranger_does_not() -> None:
    old, new = new_secret(), new_secret()
    body = b'{"type": "referral.invitation", "data": {"member": {"id": 7}}}'
    headers = signed_headers([new, old], new_message_id(), int(time.time()), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        StandardWebhook(secret).verify(body, headers)
        SvixWebhook(secret).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        SvixWebhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        SvixWebhook(new).verify(body + b" ", headers)  # the exact bytes are what is signed


def test_a_malformed_secret_is_refused_without_being_echoed() -> None:
    with pytest.raises(SecretError) as caught:
        sign("whsec_not base64!!", "msg_1", 1, b"{}")
    assert "not base64!!" not in str(caught.value)
    with pytest.raises(SecretError):
        signed_headers([], "msg_1", 1, b"{}")
