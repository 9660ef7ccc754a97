"""Outgoing webhooks end to end: endpoints, the outbox, signed deliveries to a local receiver,
retries, replay and recover, the SSRF guard at registration and at connect time, leases."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session
from standardwebhooks import Webhook as StandardWebhook
from svix.webhooks import Webhook as SvixWebhook
from svix.webhooks import WebhookVerificationError

from plugin.db.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookNotice
from plugin.errors import ValidationFailed
from plugin.services.webhook_claims import claim
from plugin.services.webhook_endpoints import add_endpoint, rotate_secret, set_enabled
from plugin.services.webhook_outbox import Event, emit, recover, replay
from plugin.services.webhook_worker import Worker
from plugin.settings import Settings
from tests.fakes.webhook_receiver import Receiver
from webhooks.events import MemberRef, advocate_promoted, ping
from webhooks.guard import Guard
from webhooks.transport import Sender


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    """Loopback allowed, plain http allowed: a development setup. Retries wait a minute, so one
    `deliver --once` makes exactly one attempt however slow the machine; a test that wants the
    next attempt moves its time (`_due_now`) instead of sleeping."""
    return dataclasses.replace(
        settings,
        webhook_allowed_networks="127.0.0.0/8",
        webhook_allow_http=True,
        webhook_schedule=(0, 60, 60, 60),
        webhook_timeout=2.0,
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def _endpoint(
    engine: Engine, settings: Settings, workspace_id: int, url: str, **kw: object
) -> tuple[int, str]:
    with Session(engine) as session:
        created = add_endpoint(session, settings, workspace_id, url, **kw)  # type: ignore[arg-type]
        session.commit()
        return created.endpoint.id, created.secret


def _promoted(n: int = 1) -> list[Event]:
    return [
        Event(
            "advocate.promoted",
            advocate_promoted(
                workspace="default",
                occurred_at=datetime.now(UTC),
                member=MemberRef(i + 1, "דנה לוי", "he"),
                score=88.0,
                level="champion",
                previous_level="advocate",
                reasons=["Answered 14 questions in the last 30 days"],
                crm={"hubspot": "501"},
                links={},
            ),
        )
        for i in range(n)
    ]


def _emit(engine: Engine, workspace_id: int, events: list[Event]) -> list[str]:
    with engine.begin() as conn:
        return emit(conn, workspace_id, events)


def _deliver(engine: Engine, settings: Settings, **kw: object) -> dict[str, int]:
    worker = Worker(engine, settings, threads=4, **kw)  # type: ignore[arg-type]
    try:
        return dict(worker.run(once=True))
    finally:
        worker.close()


def _statuses(engine: Engine) -> list[tuple[str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(WebhookDelivery.status, WebhookDelivery.attempts).order_by(WebhookDelivery.id)
        )
        return [(r[0], r[1]) for r in rows]


def _due_now(engine: Engine) -> None:
    """The retry's wait is over."""
    with engine.begin() as conn:
        conn.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.status == "pending")
            .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
        )


def _verify_both(secret: str, headers: dict[str, str], body: bytes) -> None:
    StandardWebhook(secret).verify(body, headers)
    SvixWebhook(secret).verify(body, headers)


def test_deliveries_verify_with_both_libraries_before_during_and_after_a_rotation(
    engine: Engine, hook_settings: Settings, workspace_id: int, receiver: Receiver
) -> None:
    endpoint_id, old = _endpoint(engine, hook_settings, workspace_id, receiver.url)
    receiver.trust(old)
    _emit(engine, workspace_id, _promoted())
    assert _deliver(engine, hook_settings) == {"delivered": 1}
    headers, body = receiver.raw[-1]
    _verify_both(old, headers, body)
    assert json.loads(body)["data"]["member"]["name"] == "דנה לוי"  # the exact UTF-8 bytes signed

    with Session(engine) as session:
        new = rotate_secret(session, hook_settings, workspace_id, endpoint_id).secret
        session.commit()
    _emit(engine, workspace_id, _promoted())
    _deliver(engine, hook_settings)
    headers, body = receiver.raw[-1]
    assert len(headers["webhook-signature"].split()) == 2
    _verify_both(old, headers, body)  # receivers still on the old secret keep working
    _verify_both(new, headers, body)  # and those already switched

    with engine.begin() as conn:  # the 24 hours are over
        conn.execute(
            update(WebhookEndpoint).values(previous_secret_until=datetime.now(UTC) - timedelta(seconds=1))
        )
    _emit(engine, workspace_id, _promoted())
    _deliver(engine, hook_settings)
    headers, body = receiver.raw[-1]
    _verify_both(new, headers, body)
    with pytest.raises(WebhookVerificationError):
        SvixWebhook(old).verify(body, headers)


def test_a_retry_and_a_replay_carry_the_original_id_and_bytes(
    engine: Engine, hook_settings: Settings, workspace_id: int, receiver: Receiver
) -> None:
    _, secret = _endpoint(engine, hook_settings, workspace_id, receiver.url)
    receiver.trust(secret)
    receiver.script = [(500, {}, b"oops"), (503, {}, b"busy")]
    (msg_id,) = _emit(engine, workspace_id, _promoted())
    Worker(engine, hook_settings, threads=1).run(once=True)  # attempt 1 fails; attempt 2 not due yet
    assert _statuses(engine) == [("pending", 1)]
    _due_now(engine)
    _deliver(engine, hook_settings)
    assert _statuses(engine) == [("pending", 2)]
    _due_now(engine)
    _deliver(engine, hook_settings)
    assert _statuses(engine) == [("delivered", 3)]
    ids = {h["webhook-id"] for h, _ in receiver.raw}
    bodies = {b for _, b in receiver.raw}
    assert ids == {msg_id} and len(bodies) == 1 and len(receiver.raw) == 3

    with engine.begin() as conn:
        assert replay(conn, workspace_id, msg_id) == 1
    _deliver(engine, hook_settings)
    assert receiver.raw[-1][0]["webhook-id"] == msg_id and receiver.raw[-1][1] in bodies
    with engine.connect() as conn:
        attempts = conn.execute(select(WebhookAttempt.status).order_by(WebhookAttempt.id)).scalars().all()
    assert attempts == [500, 503, 200, 200]


def test_failed_messages_stay_visible_and_recover_resends_them_with_their_ids(
    engine: Engine, hook_settings: Settings, workspace_id: int, receiver: Receiver
) -> None:
    endpoint_id, secret = _endpoint(engine, hook_settings, workspace_id, receiver.url)
    receiver.trust(secret)
    hook_settings = dataclasses.replace(hook_settings, webhook_schedule=(0,))  # one attempt only
    receiver.script = [(500, {}, b"down")] * 3
    sent = set(_emit(engine, workspace_id, _promoted(3)))
    _deliver(engine, hook_settings)
    assert [s for s, _ in _statuses(engine)] == ["failed"] * 3
    from plugin.db.models import WebhookMessage

    with engine.begin() as conn:  # made three days ago, failed just now: "failed since an hour ago"
        conn.execute(update(WebhookMessage).values(created_at=datetime.now(UTC) - timedelta(days=3)))
        conn.execute(update(WebhookDelivery).values(created_at=datetime.now(UTC) - timedelta(days=3)))
        assert recover(conn, workspace_id, endpoint_id, datetime.now(UTC) - timedelta(hours=2)) == 3
        conn.execute(update(WebhookDelivery).values(status="failed"))
    with engine.begin() as conn:
        assert recover(conn, workspace_id, endpoint_id, datetime.now(UTC) - timedelta(hours=1)) == 3
    _deliver(engine, hook_settings)
    assert [s for s, _ in _statuses(engine)] == ["delivered"] * 3
    delivered_ids = [h["webhook-id"] for h, _ in receiver.raw[3:]]
    assert set(delivered_ids) == sent


def test_410_gone_disables_the_endpoint_and_its_messages_wait_until_it_is_enabled(
    engine: Engine, hook_settings: Settings, workspace_id: int, receiver: Receiver
) -> None:
    endpoint_id, secret = _endpoint(engine, hook_settings, workspace_id, receiver.url)
    receiver.trust(secret)
    receiver.script = [(410, {}, b"gone")]
    _emit(engine, workspace_id, _promoted())
    _deliver(engine, hook_settings)
    with Session(engine) as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None and not endpoint.enabled and "410" in (endpoint.disabled_reason or "")
        assert session.scalars(select(WebhookNotice.kind)).all() == ["gone"]
    _emit(engine, workspace_id, _promoted())  # while disabled: kept, paused
    assert [s for s, _ in _statuses(engine)] == ["paused", "paused"]
    with Session(engine) as session:
        assert set_enabled(session, workspace_id, endpoint_id, True, "fixed") == 2
        session.commit()
    _deliver(engine, hook_settings)
    assert [s for s, _ in _statuses(engine)] == ["delivered", "delivered"]


def test_429_waits_as_long_as_retry_after_asks(
    engine: Engine, hook_settings: Settings, workspace_id: int, receiver: Receiver
) -> None:
    _, secret = _endpoint(engine, hook_settings, workspace_id, receiver.url)
    receiver.trust(secret)
    receiver.script = [(429, {"Retry-After": "120"}, b"slow down")]
    _emit(engine, workspace_id, _promoted())
    before = datetime.now(UTC)
    _deliver(engine, hook_settings)
    with engine.connect() as conn:
        due = conn.execute(select(WebhookDelivery.next_attempt_at)).scalar_one()
    assert due >= before + timedelta(seconds=119)


def test_a_redirect_is_a_failure_and_is_not_followed(
    engine: Engine, hook_settings: Settings, workspace_id: int, receiver: Receiver
) -> None:
    _, secret = _endpoint(engine, hook_settings, workspace_id, receiver.url)
    receiver.trust(secret)
    with Receiver([secret]) as elsewhere:
        receiver.script = [(302, {"Location": elsewhere.url}, b"")]
        _emit(engine, workspace_id, _promoted())
        _deliver(engine, hook_settings)
        assert elsewhere.seen.requests == 0
    with engine.connect() as conn:
        error = conn.execute(select(WebhookDelivery.last_error)).scalar_one()
    assert "redirects are not followed" in error


def test_an_endpoint_failing_for_five_days_is_disabled_with_a_notice(
    engine: Engine, hook_settings: Settings, workspace_id: int, receiver: Receiver
) -> None:
    endpoint_id, secret = _endpoint(engine, hook_settings, workspace_id, receiver.url)
    receiver.trust(secret)
    with engine.begin() as conn:
        conn.execute(
            update(WebhookEndpoint).values(failing_since=datetime.now(UTC) - timedelta(days=5, hours=1))
        )
    receiver.script = [(500, {}, b"still down")]
    _emit(engine, workspace_id, _promoted())
    Worker(engine, hook_settings, threads=1).run(once=True)
    with Session(engine) as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None and not endpoint.enabled
        notice = session.scalars(select(WebhookNotice)).one()
        assert notice.kind == "failing" and "5 days" in notice.text


def test_one_success_resets_the_failure_clock(
    engine: Engine, hook_settings: Settings, workspace_id: int, receiver: Receiver
) -> None:
    endpoint_id, secret = _endpoint(engine, hook_settings, workspace_id, receiver.url)
    receiver.trust(secret)
    with engine.begin() as conn:
        conn.execute(update(WebhookEndpoint).values(failing_since=datetime.now(UTC) - timedelta(days=4)))
    _emit(engine, workspace_id, _promoted())
    _deliver(engine, hook_settings)
    with Session(engine) as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None and endpoint.enabled and endpoint.failing_since is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:169.254.169.254]/hook",
        "http://localhost/hook",  # a host name that resolves to a loopback address
    ],
)
def test_the_ssrf_guard_refuses_inside_addresses_at_registration(
    engine: Engine, settings: Settings, workspace_id: int, url: str
) -> None:
    development = dataclasses.replace(settings, webhook_allow_http=True)
    with Session(engine) as session, pytest.raises(ValidationFailed) as caught:
        add_endpoint(session, development, workspace_id, url)
    assert "public addresses" in caught.value.user_message


def test_the_allow_list_lets_loopback_through_and_production_wants_https(
    engine: Engine, settings: Settings, workspace_id: int
) -> None:
    allowed = dataclasses.replace(settings, webhook_allow_http=True, webhook_allowed_networks="127.0.0.0/8")
    with Session(engine) as session:
        assert add_endpoint(session, allowed, workspace_id, "http://127.0.0.1:9/hook").secret.startswith(
            "whsec_"
        )
        production = dataclasses.replace(allowed, webhook_allow_http=False)
        with pytest.raises(ValidationFailed, match="https"):
            add_endpoint(session, production, workspace_id, "http://127.0.0.1:9/hook")


def test_dns_rebinding_after_registration_fails_at_connect_time(
    engine: Engine, hook_settings: Settings, workspace_id: int, receiver: Receiver
) -> None:
    """Registered while the name pointed at a public address; by the time of sending it points
    inside. The send checks the address it connects to, so nothing reaches the inside."""
    _, secret = _endpoint(engine, hook_settings, workspace_id, receiver.url)
    receiver.trust(secret)
    with engine.begin() as conn:
        conn.execute(update(WebhookEndpoint).values(url=f"http://hooks.example.com:{receiver.port}/hook"))
    rebinding = Guard(allowed=(), https_only=False, resolve=lambda host, port: ["127.0.0.1"])
    _emit(engine, workspace_id, _promoted())
    _deliver(engine, hook_settings, sender=Sender(rebinding, timeout_s=2))
    assert receiver.seen.requests == 0
    with engine.connect() as conn:
        error = conn.execute(select(WebhookAttempt.error)).scalar_one()
    assert "SSRF guard" in error and "loopback" in error


def test_concurrent_claims_never_take_the_same_delivery(
    engine: Engine, hook_settings: Settings, workspace_id: int
) -> None:
    _endpoint(engine, hook_settings, workspace_id, "http://127.0.0.1:9/hook")
    _emit(engine, workspace_id, _promoted(300))
    taken: list[list[int]] = [[] for _ in range(4)]

    def grab(slot: int) -> None:
        while True:
            with engine.begin() as conn:
                got = claim(conn, f"w{slot}", 7, 60, datetime.now(UTC))
            if not got:
                return
            taken[slot].extend(c.delivery_id for c in got)

    threads = [threading.Thread(target=grab, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [d for slot in taken for d in slot]
    assert len(every) == 300 and len(set(every)) == 300


def test_a_dead_workers_claims_fall_due_when_the_lease_ends(
    engine: Engine, hook_settings: Settings, workspace_id: int, receiver: Receiver
) -> None:
    _, secret = _endpoint(engine, hook_settings, workspace_id, receiver.url)
    receiver.trust(secret)
    _emit(engine, workspace_id, _promoted(5))
    now = datetime.now(UTC)
    with engine.begin() as conn:
        assert len(claim(conn, "dead", 10, 30, now)) == 5  # and then it dies
    assert _deliver(engine, hook_settings) == {}  # leased: nobody else sends them yet
    with engine.begin() as conn:
        assert claim(conn, "other", 10, 30, now + timedelta(seconds=29)) == []
        conn.execute(update(WebhookDelivery).values(next_attempt_at=now - timedelta(seconds=1)))  # lease over
    assert _deliver(engine, hook_settings) == {"delivered": 5}
    assert _statuses(engine) == [("delivered", 2)] * 5


def test_a_message_is_stored_only_with_the_change_that_caused_it(
    engine: Engine, hook_settings: Settings, workspace_id: int
) -> None:
    _endpoint(engine, hook_settings, workspace_id, "http://127.0.0.1:9/hook")
    with pytest.raises(RuntimeError), engine.begin() as conn:
        emit(conn, workspace_id, _promoted(2))
        raise RuntimeError("the change failed")
    assert _statuses(engine) == []


def test_only_subscribed_endpoints_get_a_message(
    engine: Engine, hook_settings: Settings, workspace_id: int
) -> None:
    _endpoint(engine, hook_settings, workspace_id, "http://127.0.0.1:9/a", events="lead.signal")
    _endpoint(engine, hook_settings, workspace_id, "http://127.0.0.1:9/b", events="advocate.promoted")
    _emit(engine, workspace_id, _promoted(2))
    with engine.connect() as conn:
        assert conn.execute(select(WebhookDelivery.endpoint_id).distinct()).scalars().all() == [2]
    with Session(engine) as session, pytest.raises(ValidationFailed):
        add_endpoint(session, hook_settings, workspace_id, "http://127.0.0.1:9/c", events="no.such.event")


def test_a_rate_limit_holds_back_what_exceeds_it_without_spending_attempts(
    engine: Engine, hook_settings: Settings, workspace_id: int
) -> None:
    _endpoint(engine, hook_settings, workspace_id, "http://127.0.0.1:9/hook", rate=5.0)
    _emit(engine, workspace_id, _promoted(20))
    now = datetime.now(UTC)
    with engine.begin() as conn:
        first = claim(conn, "w", 100, 60, now)
    with engine.begin() as conn:  # the same moment, another worker: the shared bucket is empty
        second = claim(conn, "w2", 100, 60, now)
    assert len(first) == 5 and second == []
    assert sorted(a for _, a in _statuses(engine)) == [0] * 15 + [1] * 5
    with engine.begin() as conn:  # a second later, five more
        later = claim(conn, "w", 100, 60, now + timedelta(seconds=1.01))
    assert len(later) == 5


def test_the_attempt_log_keeps_a_redacted_excerpt(
    engine: Engine, hook_settings: Settings, workspace_id: int, receiver: Receiver
) -> None:
    _, secret = _endpoint(engine, hook_settings, workspace_id, receiver.url)
    receiver.trust(secret)
    receiver.script = [
        (400, {}, b'{"error":"bad request","api_key":"sk_live_abcdefghijklmnop","hint":"retry"}')
    ]
    _emit(engine, workspace_id, _promoted())
    _deliver(engine, hook_settings)
    with engine.connect() as conn:
        excerpt, duration = conn.execute(select(WebhookAttempt.excerpt, WebhookAttempt.duration_ms)).one()
    assert "bad request" in excerpt and "sk_live_abcdefghijklmnop" not in excerpt and "[redacted]" in excerpt
    assert duration > 0


def test_cli_add_test_list_deliveries_and_replay(
    runner: object,
    engine: Engine,
    hook_settings: Settings,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from click.testing import CliRunner

    from plugin.cli import cli

    assert isinstance(runner, CliRunner)
    monkeypatch.setenv("FLYWHEEL_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
    monkeypatch.setenv("FLYWHEEL_WEBHOOK_ALLOW_HTTP", "1")
    added = runner.invoke(cli, ["webhooks", "add", receiver.url, "--events", "ping,lead.signal", "--json"])
    assert added.exit_code == 0, added.output
    endpoint = json.loads(added.output)
    receiver.trust(endpoint["secret"])
    tested = runner.invoke(cli, ["webhooks", "test", str(endpoint["id"]), "--json"])
    assert tested.exit_code == 0, tested.output
    result = json.loads(tested.output)
    assert result["status"] == 200 and result["outcome"] == "delivered"
    headers, body = receiver.raw[-1]
    StandardWebhook(endpoint["secret"]).verify(body, headers)
    assert json.loads(body)["type"] == "ping"
    listed = json.loads(runner.invoke(cli, ["webhooks", "list", "--json"]).output)
    assert listed["endpoints"][0]["deliveries"] == {"delivered": 1}
    assert "secret" not in json.dumps(listed)  # shown once, at creation only
    shown = json.loads(runner.invoke(cli, ["webhooks", "deliveries", "--json"]).output)["deliveries"]
    assert shown[0]["msg_id"] == result["msg_id"] and shown[0]["status"] == "delivered"
    replayed = runner.invoke(cli, ["webhooks", "replay", result["msg_id"], "--json"])
    assert json.loads(replayed.output)["deliveries_queued"] == 1
    delivered = json.loads(runner.invoke(cli, ["webhooks", "deliver", "--once", "--json"]).output)
    assert delivered["outcomes"] == {"delivered": 1}
    assert receiver.raw[-1][0]["webhook-id"] == result["msg_id"]
    bad = runner.invoke(cli, ["webhooks", "add", "http://10.0.0.1/x"])
    assert bad.exit_code == 2 and "private address" in bad.output
    missing = runner.invoke(cli, ["webhooks", "replay", "msg_nope"])
    assert missing.exit_code == 4 and "webhooks deliveries" in missing.output


def test_ping_payload_names_the_endpoint() -> None:
    payload = ping(workspace="default", occurred_at=datetime.now(UTC), endpoint_id=3)
    assert payload["type"] == "ping" and payload["data"]["endpoint_id"] == 3


def test_pruning_forgets_old_delivered_messages_and_keeps_the_rest(
    engine: Engine, hook_settings: Settings, workspace_id: int, receiver: Receiver
) -> None:
    from plugin.db.models import WebhookMessage
    from plugin.services.webhook_outbox import prune

    _, secret = _endpoint(engine, hook_settings, workspace_id, receiver.url)
    receiver.trust(secret)
    receiver.script = [(200, {}, b""), (200, {}, b""), (400, {}, b"no")]
    once = dataclasses.replace(hook_settings, webhook_schedule=(0,))
    sent = _emit(engine, workspace_id, _promoted(3))
    Worker(engine, once, threads=1).run(once=True)  # two delivered, one failed
    fresh = _emit(engine, workspace_id, _promoted(1))
    with engine.begin() as conn:  # the first three are 40 days old
        conn.execute(
            update(WebhookMessage)
            .where(WebhookMessage.msg_id.in_(sent))
            .values(created_at=datetime.now(UTC) - timedelta(days=40))
        )
    with engine.begin() as conn:
        assert prune(conn, datetime.now(UTC) - timedelta(days=30)) == 2
    with engine.connect() as conn:
        left = set(conn.execute(select(WebhookMessage.msg_id)).scalars())
        attempts = conn.execute(select(WebhookAttempt.id)).all()
    assert len(left) == 2 and set(fresh) <= left  # the failed one and the fresh one stay
    assert len(attempts) == 1  # the failed message's attempt, still visible


def test_a_secret_that_cannot_be_read_holds_its_messages_without_spending_attempts(
    engine: Engine, hook_settings: Settings, workspace_id: int, receiver: Receiver
) -> None:
    _endpoint(engine, hook_settings, workspace_id, receiver.url)
    with engine.begin() as conn:  # as if FLYWHEEL_SECRET_KEY had changed since
        conn.execute(update(WebhookEndpoint).values(secret_encrypted="gAAAAA-not-a-token"))
    _emit(engine, workspace_id, _promoted())
    _deliver(engine, hook_settings)
    assert receiver.seen.requests == 0 and _statuses(engine) == [("pending", 0)]
    with engine.connect() as conn:
        error, due = conn.execute(select(WebhookDelivery.last_error, WebhookDelivery.next_attempt_at)).one()
    assert "rotate-secret" in error and due > datetime.now(UTC) + timedelta(minutes=4)


def test_the_worker_rides_out_a_database_error_and_records_what_it_sent(
    engine: Engine,
    hook_settings: Settings,
    workspace_id: int,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sqlalchemy.exc import OperationalError

    _, secret = _endpoint(engine, hook_settings, workspace_id, receiver.url)
    receiver.trust(secret)
    _emit(engine, workspace_id, _promoted(4))
    worker = Worker(engine, hook_settings, threads=2)
    real = worker.record
    calls = {"n": 0}

    def flaky(outcomes: list[object]) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("UPDATE", {}, Exception("server closed the connection"))
        return real(outcomes)  # type: ignore[arg-type]

    monkeypatch.setattr(worker, "record", flaky)
    tally = worker.run(once=True)
    worker.close()
    assert tally["delivered"] == 4 and calls["n"] >= 2
    assert [s for s, _ in _statuses(engine)] == ["delivered"] * 4
    assert receiver.seen.requests == 4  # recorded after the error, not sent again
