"""The receiver ``flywheel serve`` runs (``FlywheelASGI``), driven in-process over ASGI with httpx.

What a platform sending deliveries notices: the status and JSON answer, what ends up stored (each
delivery exactly once, also when copies or many deliveries arrive at once), the request id and
security headers, the flood guard, and that every other request still reaches the Flask app. The
same inputs get the same answers from the Flask blueprint (``plugin/web/hooks.py``), behind trusted
proxies too (the last tests: differences this file found and that were mended).

Each test runs its requests in one ``asyncio.run``: the receiver's writer thread hands results back
to the event loop it first served on, as it does in a uvicorn worker (one loop for its lifetime).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import logging
import re
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from connectors.sources.signatures import standard_webhooks_signature
from plugin.db.models import Activity, InboundDelivery
from plugin.logs import configure_logging
from plugin.services.delivery_queue import DeliveryQueue
from plugin.services.ingest import Delivery, Ingestor, store_deliveries
from plugin.services.workspaces import ensure_workspace
from plugin.settings import Settings
from plugin.web.app import create_app
from plugin.web.hooks_asgi import FlywheelASGI
from tests.plugin.test_hooks import NOW, SECRET, github_sig, secret

T = TypeVar("T")
GENERIC_KEY = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
HEX32 = re.compile(r"^[0-9a-f]{32}$")
#: Each test's requests finish well within this; a lost result fails the test instead of hanging it.
DEADLINE_S = 30.0
#: What the writer thread calls to store a group (patched to watch or break it).
QUEUE_STORE = "plugin.services.delivery_queue.store_deliveries"


# -- fixtures and helpers -----------------------------------------------------------------------------


@pytest.fixture
def make_asgi(settings: Settings, engine: Engine, workspace_id: int) -> Iterator[Callable[..., FlywheelASGI]]:
    """``make(**settings_changes)``: a receiver as ``flywheel serve`` builds it, on the test database.
    Its writer thread is stopped before the tables are emptied."""
    made: list[FlywheelASGI] = []

    def make(**changes: Any) -> FlywheelASGI:
        app = create_app(dataclasses.replace(settings, **changes), engine, clock=lambda: NOW)
        asgi = FlywheelASGI(app, threads=4)
        made.append(asgi)
        return asgi

    yield make
    for asgi in made:
        if asgi._queue is not None:
            asgi._queue.close()
        asgi.wsgi.executor.shutdown(wait=True)
    configure_logging(settings)  # back to plain text logs for whatever runs next


@pytest.fixture
def github_bodies(shared_dir: Path) -> Callable[[str], bytes]:
    """GitHub's own example payloads, unmodified: ``body("issues/opened")``, ``body("ping")``."""
    root = shared_dir / "data" / "github-webhooks"

    def body(name: str) -> bytes:
        path = root / f"{name}.payload.json" if "/" in name else root / name / "payload.json"
        return path.read_bytes()

    return body


def run(main: Awaitable[T]) -> T:
    return asyncio.run(asyncio.wait_for(main, DEADLINE_S))


def http(
    asgi: FlywheelASGI, address: str = "127.0.0.1", base: str = "http://flywheel.test"
) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=asgi, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=base)


def github(body: bytes, event: str, delivery: str | None, key: str = SECRET) -> dict[str, str]:
    headers = {"X-GitHub-Event": event, "X-Hub-Signature-256": github_sig(body, key)}
    if delivery is not None:
        headers["X-GitHub-Delivery"] = delivery
    return headers


def generic_record(n: int) -> bytes:
    record = {
        "id": f"reg-{n}",
        "type": "event_registered",
        "occurred_at": "2026-11-20T09:00:00Z",
        "member": {"email": f"person{n}@acme.io", "name": f"Person {n}"},
        "properties": {"event_id": "e1"},
    }
    return json.dumps({"records": [record]}).encode()


def generic(body: bytes, msg_id: str, key: str = GENERIC_KEY) -> dict[str, str]:
    stamp = str(int(NOW.timestamp()))
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": standard_webhooks_signature(key, msg_id, stamp, body),
    }


def counts(engine: Engine, workspace: int | None = None) -> tuple[int, int]:
    """(activities, inbound delivery rows), in one workspace or all."""
    with engine.connect() as conn:
        found = []
        for model in (Activity, InboundDelivery):
            query = select(func.count()).select_from(model)
            if workspace is not None:
                query = query.where(model.workspace_id == workspace)
            found.append(int(conn.execute(query).scalar_one()))
        return found[0], found[1]


def add_workspace(engine: Engine, slug: str) -> int:
    with Session(engine) as session:
        workspace, _ = ensure_workspace(session, slug, slug.title())
        session.commit()
        return workspace.id


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["type"] == "about:blank"
    return body


def record_groups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the groups the writer thread stores, in order (it still stores them)."""
    sizes: list[int] = []
    real = store_deliveries

    def recording(engine: Engine, workspace_id: int, deliveries: Sequence[Delivery]) -> None:
        sizes.append(len(deliveries))
        real(engine, workspace_id, deliveries)

    monkeypatch.setattr(QUEUE_STORE, recording)
    return sizes


async def samples(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, as the Flask app behind the receiver answers it."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


Exchange = tuple[int, dict[str, str], bytes]


async def call(
    asgi: FlywheelASGI, path: str, headers: dict[str, str], receive: Callable[[], Awaitable[dict[str, Any]]]
) -> Exchange:
    """One POST straight through the ASGI interface, with the caller's own ``receive``."""
    started: dict[str, Any] = {}
    body = bytearray()

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started.update(message)
        else:
            body.extend(message.get("body", b""))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("flywheel.test", 80),
    }
    await asgi(scope, receive, send)  # type: ignore[arg-type]
    out = {k.decode(): v.decode() for k, v in started["headers"]}
    return int(started["status"]), out, bytes(body)


# -- storing ------------------------------------------------------------------------------------------


def test_a_signed_github_delivery_is_stored_and_its_replay_is_a_duplicate(
    make_asgi: Callable[..., FlywheelASGI],
    settings: Settings,
    engine: Engine,
    workspace_id: int,
    github_bodies: Callable[[str], bytes],
) -> None:
    secret(settings, engine, workspace_id, "github")
    asgi = make_asgi()
    body = github_bodies("issues/opened")

    async def main() -> list[httpx.Response]:
        async with http(asgi) as client:
            first = await client.post("/hooks/github", content=body, headers=github(body, "issues", "d-1"))
            again = await client.post("/hooks/github", content=body, headers=github(body, "issues", "d-1"))
            return [first, again]

    first, again = run(main())
    assert first.status_code == 200 and first.json() == {"status": "stored", "stored": 1, "duplicates": 0}
    assert first.headers["content-type"] == "application/json"
    assert again.status_code == 200 and again.json() == {"status": "duplicate", "stored": 0}
    with engine.connect() as conn:
        rows = conn.execute(select(Activity.source, Activity.source_activity_id, Activity.type)).all()
        deliveries = conn.execute(select(InboundDelivery.delivery_id, InboundDelivery.event)).all()
    assert [tuple(r) for r in rows] == [("github", "issue:444500041", "issue_opened")]
    assert [tuple(d) for d in deliveries] == [("d-1", "issues")]


def test_two_copies_of_a_delivery_sent_at_once_are_stored_once(
    make_asgi: Callable[..., FlywheelASGI],
    settings: Settings,
    engine: Engine,
    workspace_id: int,
    github_bodies: Callable[[str], bytes],
) -> None:
    secret(settings, engine, workspace_id, "github")
    asgi = make_asgi()
    body = github_bodies("pull_request/opened")
    headers = github(body, "pull_request", "d-twice")

    async def main() -> tuple[httpx.Response, ...]:
        async with http(asgi) as client:
            return tuple(
                await asyncio.gather(
                    client.post("/hooks/github", content=body, headers=headers),
                    client.post("/hooks/github", content=body, headers=headers),
                )
            )

    answers = run(main())
    assert [a.status_code for a in answers] == [200, 200]
    assert sorted((a.json() for a in answers), key=lambda b: b["status"]) == [
        {"status": "duplicate", "stored": 0},
        {"status": "stored", "stored": 1, "duplicates": 0},
    ]
    assert counts(engine) == (1, 1)


def test_fifty_deliveries_sent_at_once_are_each_stored_exactly_once(
    make_asgi: Callable[..., FlywheelASGI],
    settings: Settings,
    engine: Engine,
    workspace_id: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret(settings, engine, workspace_id, "generic:events", GENERIC_KEY)
    asgi = make_asgi()
    groups = record_groups(monkeypatch)
    bodies = [generic_record(n) for n in range(50)]

    async def main() -> list[httpx.Response]:
        async with http(asgi) as client:
            return list(
                await asyncio.gather(
                    *(
                        client.post("/hooks/generic/events", content=b, headers=generic(b, f"msg_{n}"))
                        for n, b in enumerate(bodies)
                    )
                )
            )

    answers = run(main())
    assert [a.status_code for a in answers] == [200] * 50
    assert all(a.json() == {"status": "stored", "stored": 1, "duplicates": 0} for a in answers)
    assert counts(engine) == (50, 50)
    with engine.connect() as conn:
        ids = set(conn.execute(select(Activity.source_activity_id)).scalars())
    assert ids == {f"reg-{n}" for n in range(50)}
    assert sum(groups) == 50 and max(groups) > 1  # written in groups, not one transaction each


def test_a_store_failure_answers_500_stores_nothing_and_the_retry_is_stored(
    make_asgi: Callable[..., FlywheelASGI],
    settings: Settings,
    engine: Engine,
    workspace_id: int,
    github_bodies: Callable[[str], bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret(settings, engine, workspace_id, "github")
    asgi = make_asgi()
    body = github_bodies("issue_comment/created")
    headers = github(body, "issue_comment", "d-fail")
    real_store = store_deliveries
    real_ingest = Ingestor._store

    def refused(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("disk full")

    async def main() -> list[httpx.Response]:
        async with http(asgi) as client:
            answers = []
            monkeypatch.setattr(QUEUE_STORE, refused)
            answers.append(await client.post("/hooks/github", content=body, headers=headers))
            monkeypatch.setattr(QUEUE_STORE, real_store)
            # failing inside the transaction, after the delivery id was claimed: the claim goes too
            monkeypatch.setattr(Ingestor, "_store", refused)
            answers.append(await client.post("/hooks/github", content=body, headers=headers))
            monkeypatch.setattr(Ingestor, "_store", real_ingest)
            answers.append(await client.post("/hooks/github", content=body, headers=headers))
            return answers

    before_failure, inside_transaction, retry = run(main())
    for failed in (before_failure, inside_transaction):
        assert problem(failed, 500) == {
            "type": "about:blank",
            "title": "Internal Server Error",
            "status": 500,
            "detail": "the delivery was not stored; the platform's retry will store it",
        }
        assert HEX32.match(failed.headers["x-request-id"])
    assert retry.status_code == 200 and retry.json() == {"status": "stored", "stored": 1, "duplicates": 0}
    assert counts(engine) == (1, 1)
    assert asgi._queue is not None and asgi._queue._thread is not None and asgi._queue._thread.is_alive()


def test_lifespan_shutdown_writes_the_queued_deliveries_then_stops_the_writer(
    make_asgi: Callable[..., FlywheelASGI],
    settings: Settings,
    engine: Engine,
    workspace_id: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret(settings, engine, workspace_id, "generic:events", GENERIC_KEY)
    asgi = make_asgi()
    entered, release = threading.Event(), threading.Event()
    submitted: list[int] = []
    real_store, real_submit = store_deliveries, DeliveryQueue.submit

    def held(engine: Engine, workspace_id: int, deliveries: Sequence[Delivery]) -> None:
        entered.set()
        release.wait(DEADLINE_S)  # the writer is busy while the others queue up behind it
        real_store(engine, workspace_id, deliveries)

    def counting(queue: DeliveryQueue, workspace_id: int, delivery: Delivery, token: Any) -> None:
        real_submit(queue, workspace_id, delivery, token)
        submitted.append(workspace_id)

    monkeypatch.setattr(QUEUE_STORE, held)
    monkeypatch.setattr(DeliveryQueue, "submit", counting)
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: list[str] = []

    async def send(message: dict[str, Any]) -> None:
        outbox.append(message["type"])

    async def until(done: Callable[[], bool]) -> None:
        while not done():
            await asyncio.sleep(0.005)

    async def main() -> list[httpx.Response]:
        lifespan = asyncio.create_task(asgi({"type": "lifespan"}, inbox.get, send))  # type: ignore[arg-type]
        await inbox.put({"type": "lifespan.startup"})
        await until(lambda: "lifespan.startup.complete" in outbox)
        async with http(asgi) as client:
            requests = [
                asyncio.create_task(
                    client.post("/hooks/generic/events", content=b, headers=generic(b, f"msg_{n}"))
                )
                for n, b in ((n, generic_record(n)) for n in range(8))
            ]
            await until(lambda: len(submitted) == 8 and entered.is_set())
            await inbox.put({"type": "lifespan.shutdown"})
            await asyncio.sleep(0.1)
            assert "lifespan.shutdown.complete" not in outbox  # it waits for the writer
            release.set()
            await lifespan
            return list(await asyncio.gather(*requests))

    answers = run(main())
    assert outbox == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert [a.json()["status"] for a in answers] == ["stored"] * 8
    assert counts(engine) == (8, 8)
    assert asgi._queue is not None and asgi._queue._thread is not None
    assert not asgi._queue._thread.is_alive()


def test_lifespan_without_any_delivery_starts_and_stops(make_asgi: Callable[..., FlywheelASGI]) -> None:
    asgi = make_asgi()
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    run(asgi({"type": "lifespan"}, receive, send))  # type: ignore[arg-type]
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert asgi._queue is None  # no writer was ever started


# -- refusals -----------------------------------------------------------------------------------------


def test_a_wrong_signature_and_no_configured_secret_get_the_same_401(
    make_asgi: Callable[..., FlywheelASGI],
    settings: Settings,
    engine: Engine,
    workspace_id: int,
    github_bodies: Callable[[str], bytes],
) -> None:
    body = github_bodies("issues/opened")
    signed = github(body, "issues", "d-1")

    async def post(asgi: FlywheelASGI, path: str, headers: dict[str, str]) -> httpx.Response:
        async with http(asgi) as client:
            return await client.post(path, content=body, headers=headers)

    unconfigured = run(post(make_asgi(), "/hooks/github", signed))  # no GitHub secret yet
    secret(settings, engine, workspace_id, "github")
    asgi = make_asgi()

    async def configured() -> list[httpx.Response]:
        async with http(asgi) as client:
            return [
                await client.post(
                    "/hooks/github",
                    content=body,
                    headers=github(body, "issues", "d-1", "a-different-secret-12"),
                ),
                await client.post("/hooks/github?workspace=nope", content=body, headers=signed),
                await client.post("/hooks/github", content=body, headers={"X-GitHub-Event": "issues"}),
            ]

    wrong, unknown_workspace, unsigned = run(configured())
    expected = {
        "type": "about:blank",
        "title": "Signature cannot be verified",
        "status": 401,
        "detail": "X-Hub-Signature-256 does not match the body",
    }
    assert problem(wrong, 401) == expected
    assert problem(unconfigured, 401) == expected
    assert problem(unknown_workspace, 401) == expected
    assert problem(unsigned, 401)["title"] == "Signature cannot be verified"
    assert counts(engine) == (0, 0)


def test_a_sender_gone_before_its_body_arrived_is_counted_not_logged_as_a_failure(
    make_asgi: Callable[..., FlywheelASGI],
    settings: Settings,
    engine: Engine,
    workspace_id: int,
    github_bodies: Callable[[str], bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret(settings, engine, workspace_id, "github")
    asgi = make_asgi()
    body = github_bodies("issues/opened")
    sent: list[dict[str, Any]] = []
    parts = iter(
        [{"type": "http.request", "body": body[:100], "more_body": True}, {"type": "http.disconnect"}]
    )

    async def receive() -> dict[str, Any]:
        return next(parts)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "scheme": "http",
        "path": "/hooks/github",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in github(body, "issues", "d-gone").items()],
        "client": ("127.0.0.1", 40000),
    }
    with caplog.at_level(logging.WARNING):
        asyncio.run(asgi(scope, receive, send))  # type: ignore[arg-type]
    assert sent == []  # nobody to answer
    assert counts(engine) == (0, 0)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    text = asgi.flask.test_client().get("/metrics").get_data(as_text=True)
    assert 'flywheel_hook_events_total{outcome="disconnected",source="github"} 1.0' in text


def test_a_body_over_the_limit_is_413_whether_declared_or_streamed(
    make_asgi: Callable[..., FlywheelASGI],
    settings: Settings,
    engine: Engine,
    workspace_id: int,
    github_bodies: Callable[[str], bytes],
) -> None:
    secret(settings, engine, workspace_id, "github")
    limit = 5_000
    asgi = make_asgi(max_hook_body=limit)
    body = github_bodies("issues/opened")  # GitHub's own example, larger than this receiver accepts
    assert len(body) > limit
    small = github_bodies("ping/with-organization")
    assert len(small) <= limit
    reads = {"declared": 0, "streamed": 0, "fits": 0}
    chunk = 1_000

    def reader(kind: str, data: bytes, step: int) -> Callable[[], Awaitable[dict[str, Any]]]:
        async def receive() -> dict[str, Any]:
            at = reads[kind] * step
            reads[kind] += 1
            part = data[at : at + step]
            return {"type": "http.request", "body": part, "more_body": at + step < len(data)}

        return receive

    async def main() -> list[Exchange]:
        declared = await call(
            asgi,
            "/hooks/github",
            {**github(body, "issues", "d-big"), "Content-Length": str(len(body))},
            reader("declared", body, len(body)),
        )
        streamed = await call(
            asgi, "/hooks/github", github(body, "issues", "d-big"), reader("streamed", body, chunk)
        )
        fits = await call(asgi, "/hooks/github", github(small, "ping", "d-small"), reader("fits", small, 100))
        return [declared, streamed, fits]

    declared, streamed, fits = run(main())
    for status, headers, raw in (declared, streamed):
        assert status == 413 and headers["content-type"] == "application/problem+json"
        assert json.loads(raw) == {
            "type": "about:blank",
            "title": "Request Entity Too Large",
            "status": 413,
            "detail": "bodies over 5,000 bytes are refused",
        }
    assert reads["declared"] == 0  # refused on its Content-Length, before reading a byte
    assert reads["streamed"] == limit // chunk + 1  # read until it passed the limit, no further
    assert fits[0] == 200 and json.loads(fits[2])["status"] == "ignored"  # chunks are put together
    assert counts(engine) == (0, 1)  # only the ping's delivery id


def test_invalid_json_is_400_and_deliveries_without_activity_are_ignored(
    make_asgi: Callable[..., FlywheelASGI],
    settings: Settings,
    engine: Engine,
    workspace_id: int,
    github_bodies: Callable[[str], bytes],
) -> None:
    secret(settings, engine, workspace_id, "github")
    asgi = make_asgi()
    broken = b'{"action": "opened", "issue": '
    ping = github_bodies("ping")
    labeled = github_bodies("issues/labeled")

    async def main() -> list[httpx.Response]:
        async with http(asgi) as client:
            return [
                await client.post("/hooks/github", content=broken, headers=github(broken, "issues", "d-1")),
                await client.post("/hooks/github", content=ping, headers=github(ping, "ping", "d-2")),
                await client.post("/hooks/github", content=labeled, headers=github(labeled, "issues", "d-3")),
                await client.post(
                    "/hooks/github", content=ping, headers={"X-Hub-Signature-256": github_sig(ping)}
                ),
            ]

    invalid, pinged, maintenance, no_event = run(main())
    body = problem(invalid, 400)
    assert body["title"] == "Malformed payload" and list(body["errors"]) == ["body"]
    assert "not valid JSON" in body["detail"]
    assert pinged.status_code == 200
    assert pinged.json() == {"status": "ignored", "reason": "ping carries no activity", "stored": 0}
    assert maintenance.status_code == 200 and maintenance.json() == {
        "status": "ignored",
        "reason": "issues.labeled is a maintenance action, not community activity",
        "stored": 0,
    }
    assert problem(no_event, 400)["detail"] == "X-GitHub-Event names the event"
    assert counts(engine)[0] == 0


def test_generic_receiver_refuses_a_bad_source_name_and_stores_a_signed_delivery(
    make_asgi: Callable[..., FlywheelASGI], settings: Settings, engine: Engine, workspace_id: int
) -> None:
    secret(settings, engine, workspace_id, "generic:events", GENERIC_KEY)
    asgi = make_asgi()
    body = generic_record(1)

    async def main() -> list[httpx.Response]:
        async with http(asgi) as client:
            return [
                await client.post("/hooks/generic/no.dots", content=body, headers=generic(body, "msg_1")),
                await client.post("/hooks/generic/Events", content=body, headers=generic(body, "msg_1")),
                await client.post("/hooks/generic/events", content=body, headers=generic(body, "msg_1")),
                await client.post(
                    "/hooks/generic/events", content=body, headers=generic(body, "msg_2", "whsec_" + "A" * 32)
                ),
            ]

    bad_name, stored, replay, forged = run(main())
    assert problem(bad_name, 404)["title"] == "Unknown source"
    assert stored.status_code == 200 and stored.json() == {"status": "stored", "stored": 1, "duplicates": 0}
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate"
    assert problem(forged, 401)["title"] == "Signature cannot be verified"
    with engine.connect() as conn:
        assert conn.execute(select(Activity.source, Activity.source_activity_id)).one() == ("events", "reg-1")
        assert conn.execute(select(InboundDelivery.source, InboundDelivery.delivery_id)).one() == (
            "generic:events",
            "msg_1",
        )


def test_a_sender_over_its_budget_gets_429_with_retry_after(
    make_asgi: Callable[..., FlywheelASGI],
    settings: Settings,
    engine: Engine,
    workspace_id: int,
    github_bodies: Callable[[str], bytes],
) -> None:
    secret(settings, engine, workspace_id, "github")
    direct = make_asgi(hooks_rate_limit="3 per minute")
    proxied = make_asgi(hooks_rate_limit="2 per minute", trusted_proxies=1)
    ping = github_bodies("ping")
    headers = github(ping, "ping", None)

    async def burst(client: httpx.AsyncClient, n: int, forwarded: str | None = None) -> list[httpx.Response]:
        extra = {} if forwarded is None else {"X-Forwarded-For": forwarded}
        return [
            await client.post("/hooks/github", content=ping, headers={**headers, **extra}) for _ in range(n)
        ]

    async def main() -> dict[str, list[httpx.Response]]:
        async with http(direct) as one, http(direct, "10.0.0.9") as other, http(proxied, "10.1.1.1") as proxy:
            return {
                "one": await burst(one, 4),
                "one, claiming another address": await burst(one, 1, "192.0.2.50"),
                "other": await burst(other, 1),
                "proxied a": await burst(proxy, 3, "198.51.100.7"),
                "proxied b": await burst(proxy, 2, "198.51.100.8"),
                "proxied a, spoofing b": await burst(proxy, 1, "198.51.100.8, 198.51.100.7"),
            }

    got = {name: [a.status_code for a in answers] for name, answers in run(main()).items()}
    assert got == {
        "one": [200, 200, 200, 429],
        "one, claiming another address": [429],  # X-Forwarded-For is not read without a proxy
        "other": [200],
        "proxied a": [200, 200, 429],
        "proxied b": [200, 200],  # its own budget behind the same proxy
        "proxied a, spoofing b": [429],  # the proxy's own entry (the rightmost) is the sender
    }


def test_a_refused_flood_gets_problem_details_and_retry_after(
    make_asgi: Callable[..., FlywheelASGI],
    settings: Settings,
    engine: Engine,
    workspace_id: int,
    github_bodies: Callable[[str], bytes],
) -> None:
    secret(settings, engine, workspace_id, "github")
    asgi = make_asgi(hooks_rate_limit="1 per minute")
    ping = github_bodies("ping")

    async def main() -> list[httpx.Response]:
        async with http(asgi) as client:
            return [
                await client.post("/hooks/github", content=ping, headers=github(ping, "ping", f"d-{n}"))
                for n in range(2)
            ]

    ok, refused = run(main())
    assert ok.status_code == 200
    body = problem(refused, 429)
    assert body["title"] == "Too many requests" and "1 per minute" in body["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60


# -- what every answer carries ------------------------------------------------------------------------


def test_request_ids_headers_metrics_and_the_request_log_line(
    make_asgi: Callable[..., FlywheelASGI],
    settings: Settings,
    engine: Engine,
    workspace_id: int,
    github_bodies: Callable[[str], bytes],
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret(settings, engine, workspace_id, "github")
    asgi = make_asgi(log_format="json")
    body = github_bodies("star/created")
    signed = github(body, "star", "d-1")
    stored = ("flywheel_hook_events_total", (("outcome", "stored"), ("source", "github")))
    refused = ("flywheel_hook_events_total", (("outcome", "unauthorized"), ("source", "github")))
    hooks_2xx = ("flywheel_http_requests_total", (("group", "hooks"), ("status_class", "2xx")))
    hooks_4xx = ("flywheel_http_requests_total", (("group", "hooks"), ("status_class", "4xx")))

    async def main() -> tuple[dict[str, httpx.Response], dict[Any, float], dict[Any, float]]:
        async with http(asgi) as client, http(asgi, base="https://flywheel.test") as tls:
            before = await samples(client)
            answers = {
                "given": await client.post(
                    "/hooks/github", content=body, headers={**signed, "X-Request-ID": "req-42"}
                ),
                "invalid": await client.post(
                    "/hooks/github", content=body, headers={**signed, "X-Request-ID": "bad id <forged>"}
                ),
                "absent": await tls.post(
                    "/hooks/github", content=body, headers=github(body, "star", "d-1", "wrong-secret-value")
                ),
            }
            return answers, before, await samples(client)

    capsys.readouterr()
    answers, before, after = run(main())
    given, invalid, absent = answers["given"], answers["invalid"], answers["absent"]
    assert given.headers["x-request-id"] == "req-42"
    assert HEX32.match(invalid.headers["x-request-id"]) and HEX32.match(absent.headers["x-request-id"])
    assert invalid.headers["x-request-id"] != absent.headers["x-request-id"]
    assert [a.status_code for a in answers.values()] == [200, 200, 401]
    for answer in answers.values():
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "same-origin"
        assert answer.headers["x-frame-options"] == "DENY"
    assert "strict-transport-security" not in given.headers
    assert absent.headers["strict-transport-security"].startswith("max-age=")
    assert after[stored] == before.get(stored, 0) + 1
    assert after[refused] == before.get(refused, 0) + 1
    assert after[hooks_2xx] == before.get(hooks_2xx, 0) + 2
    assert after[hooks_4xx] == before.get(hooks_4xx, 0) + 1
    lines = [
        json.loads(line)
        for line in capsys.readouterr().err.splitlines()
        if line.startswith("{") and json.loads(line)["logger"] == "flywheel.request"
    ]
    hook_lines = [line for line in lines if line["path"] == "/hooks/github"]
    assert [(h["method"], h["status"], h["request_id"]) for h in hook_lines] == [
        ("POST", 200, "req-42"),
        ("POST", 200, invalid.headers["x-request-id"]),
        ("POST", 401, absent.headers["x-request-id"]),
    ]
    assert all(isinstance(h["duration_ms"], float) for h in hook_lines)


def test_every_other_request_reaches_the_flask_app(make_asgi: Callable[..., FlywheelASGI]) -> None:
    asgi = make_asgi()

    async def main() -> dict[str, httpx.Response]:
        async with http(asgi) as client:
            return {
                "health": await client.get("/healthz", headers={"X-Request-ID": "probe-1"}),
                "get hook": await client.get("/hooks/github"),
                "unknown hook": await client.post("/hooks/unknown", content=b"{}"),
                "no generic name": await client.post("/hooks/generic/", content=b"{}"),
                "nested generic name": await client.post("/hooks/generic/a/b", content=b"{}"),
                "trailing slash": await client.post("/hooks/github/", content=b"{}"),
            }

    got = run(main())
    assert got["health"].status_code == 200 and got["health"].json() == {"status": "ok"}
    assert got["health"].headers["x-request-id"] == "probe-1"  # Flask's own request id
    assert got["get hook"].status_code == 405 and "POST" in got["get hook"].headers["allow"]
    for name in ("unknown hook", "no generic name", "nested generic name", "trailing slash"):
        assert got[name].status_code == 404, name
        assert got[name].headers["content-type"] == "application/problem+json"


# -- the same rules as the Flask blueprint --------------------------------------------------------------


Case = tuple[str, str, dict[str, str], bytes]


def _cases(body: Callable[[str], bytes]) -> list[Case]:
    opened, reorg, ping, labeled = (
        body("issues/opened"),
        body("issues/opened.with-organization"),
        body("ping"),
        body("issues/labeled"),
    )
    malformed = json.dumps(
        {
            "action": "opened",
            "issue": {"id": 1},
            "sender": {"id": 2, "login": "x"},
            "repository": {"id": 3, "full_name": "o/r"},
        }
    ).encode()
    broken = b"{not json"
    record = generic_record(7)
    foreign = json.dumps(
        {"records": [{**json.loads(record)["records"][0], "id": "reg-8", "source": "other"}]}
    ).encode()
    stamp = str(int(NOW.timestamp()))
    challenge = json.dumps({"token": "t", "challenge": "c-123", "type": "url_verification"}).encode()
    slack_sig = (
        "v0=" + hmac.new(SECRET.encode(), f"v0:{stamp}:".encode() + challenge, hashlib.sha256).hexdigest()
    )
    return [
        ("stored", "/hooks/github", github(opened, "issues", "d-1"), opened),
        ("duplicate", "/hooks/github", github(opened, "issues", "d-1"), opened),
        ("same activity, new delivery id", "/hooks/github", github(reorg, "issues", "d-2"), reorg),
        (
            "wrong signature",
            "/hooks/github",
            github(opened, "issues", "d-3", "not-the-secret-at-all"),
            opened,
        ),
        ("no signature", "/hooks/github", {"X-GitHub-Event": "issues"}, opened),
        ("not JSON", "/hooks/github", github(broken, "issues", "d-4"), broken),
        ("no event header", "/hooks/github", {"X-Hub-Signature-256": github_sig(opened)}, opened),
        ("malformed field", "/hooks/github", github(malformed, "issues", "d-5"), malformed),
        ("ping", "/hooks/github", github(ping, "ping", "d-6"), ping),
        ("maintenance", "/hooks/github", github(labeled, "issues", "d-7"), labeled),
        ("bad generic name", "/hooks/generic/not.valid", generic(record, "m-0"), record),
        ("generic stored", "/hooks/generic/events", generic(record, "m-1"), record),
        ("generic duplicate", "/hooks/generic/events", generic(record, "m-1"), record),
        ("generic wrong source", "/hooks/generic/events", generic(foreign, "m-2"), foreign),
        ("unsigned discourse", "/hooks/discourse", {"X-Discourse-Event": "ping"}, b"{}"),
        (
            "slack challenge",
            "/hooks/slack",
            {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": slack_sig},
            challenge,
        ),
    ]


def test_the_asgi_receiver_and_the_flask_blueprint_answer_alike(
    make_asgi: Callable[..., FlywheelASGI],
    settings: Settings,
    engine: Engine,
    github_bodies: Callable[[str], bytes],
) -> None:
    """The same requests, to two workspaces with the same secrets: one through the ASGI receiver,
    one through Flask's test client on the same app."""
    spaces = {"asgi": add_workspace(engine, "alpha"), "flask": add_workspace(engine, "beta")}
    for ws in spaces.values():
        secret(settings, engine, ws, "github")
        secret(settings, engine, ws, "slack")
        secret(settings, engine, ws, "generic:events", GENERIC_KEY)
    asgi = make_asgi()
    cases = _cases(github_bodies)

    async def through_asgi() -> list[tuple[int, str, Any]]:
        async with http(asgi) as client:
            out = []
            for _, path, headers, body in cases:
                r = await client.post(f"{path}?workspace=alpha", content=body, headers=headers)
                out.append((r.status_code, r.headers["content-type"], r.json()))
            return out

    by_asgi = run(through_asgi())
    flask = asgi.flask.test_client()
    by_flask = []
    for _, path, headers, body in cases:
        r = flask.post(f"{path}?workspace=beta", data=body, headers=headers)
        by_flask.append((r.status_code, r.content_type, r.json))
    for (name, *_), a, f in zip(cases, by_asgi, by_flask, strict=True):
        assert a == f, name
    statuses = {name: a[0] for (name, *_), a in zip(cases, by_asgi, strict=True)}
    assert statuses == {
        "stored": 200,
        "duplicate": 200,
        "same activity, new delivery id": 200,
        "wrong signature": 401,
        "no signature": 401,
        "not JSON": 400,
        "no event header": 400,
        "malformed field": 422,
        "ping": 200,
        "maintenance": 200,
        "bad generic name": 404,
        "generic stored": 200,
        "generic duplicate": 200,
        "generic wrong source": 422,
        "unsigned discourse": 401,
        "slack challenge": 200,
    }
    assert [a[2].get("status") for a in by_asgi[:3]] == ["stored", "duplicate", "stored"]
    assert by_asgi[2][2] == {"status": "stored", "stored": 0, "duplicates": 1}
    assert counts(engine, spaces["asgi"]) == counts(engine, spaces["flask"]) == (2, 5)


def test_the_asgi_receiver_and_flask_share_the_flood_guard_and_answer_it_alike(
    make_asgi: Callable[..., FlywheelASGI],
    settings: Settings,
    engine: Engine,
    workspace_id: int,
    github_bodies: Callable[[str], bytes],
) -> None:
    secret(settings, engine, workspace_id, "github")
    ping = github_bodies("ping")
    tight = make_asgi(hooks_rate_limit="1 per minute")

    async def through_asgi() -> list[httpx.Response]:
        async with http(tight, "10.0.0.1") as a, http(tight, "10.0.0.2") as b:
            return [
                await a.post("/hooks/github", content=ping, headers=github(ping, "ping", None)),
                await a.post("/hooks/github", content=ping, headers=github(ping, "ping", None)),
                await b.post("/hooks/github", content=ping, headers=github(ping, "ping", None)),
            ]

    first, flood, other = run(through_asgi())
    assert [first.status_code, flood.status_code, other.status_code] == [200, 429, 200]
    # the guard is the app's: Flask answers the second sender, whose budget the ASGI side spent
    flask_flood = tight.flask.test_client().post(
        "/hooks/github",
        data=ping,
        headers=github(ping, "ping", None),
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
    )
    assert (flood.status_code, flood.headers["content-type"], flood.json()) == (
        flask_flood.status_code,
        flask_flood.content_type,
        flask_flood.json,
    )
    assert 1 <= int(flood.headers["retry-after"]) <= 60 and 1 <= int(flask_flood.headers["Retry-After"]) <= 60


# -- where the two servers once differed ------------------------------------------------------------


def test_a_too_large_body_gets_the_same_answer_from_both_servers(
    make_asgi: Callable[..., FlywheelASGI],
    settings: Settings,
    engine: Engine,
    workspace_id: int,
    github_bodies: Callable[[str], bytes],
) -> None:
    secret(settings, engine, workspace_id, "github")
    opened = github_bodies("issues/opened")
    small = make_asgi(max_hook_body=4_000)

    async def through_asgi() -> httpx.Response:
        async with http(small) as client:
            return await client.post("/hooks/github", content=opened, headers=github(opened, "issues", "d-1"))

    large = run(through_asgi())
    flask = small.flask.test_client().post(
        "/hooks/github", data=opened, headers=github(opened, "issues", "d-1")
    )
    assert large.status_code == flask.status_code == 413
    assert large.headers["content-type"] == flask.content_type == "application/problem+json"
    assert large.json() == flask.json


def test_behind_a_tls_proxy_hook_answers_carry_hsts_like_flask_s(
    make_asgi: Callable[..., FlywheelASGI],
    settings: Settings,
    engine: Engine,
    workspace_id: int,
    github_bodies: Callable[[str], bytes],
) -> None:
    secret(settings, engine, workspace_id, "github")
    asgi = make_asgi(trusted_proxies=1)
    ping = github_bodies("ping")
    headers = {**github(ping, "ping", None), "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.5"}

    async def main() -> tuple[httpx.Response, httpx.Response]:
        async with http(asgi) as client:
            return (
                await client.post("/hooks/github", content=ping, headers=headers),
                await client.get("/healthz", headers=headers),
            )

    hook, health = run(main())
    flask_hook = asgi.flask.test_client().post("/hooks/github", data=ping, headers=headers)
    assert health.headers["strict-transport-security"] == flask_hook.headers["Strict-Transport-Security"]
    assert hook.status_code == 200
    assert hook.headers.get("strict-transport-security") == health.headers["strict-transport-security"]


def test_x_forwarded_for_split_over_two_header_lines_reads_like_one(
    make_asgi: Callable[..., FlywheelASGI],
    settings: Settings,
    engine: Engine,
    workspace_id: int,
    github_bodies: Callable[[str], bytes],
) -> None:
    secret(settings, engine, workspace_id, "github")
    asgi = make_asgi(trusted_proxies=2, hooks_rate_limit="1 per minute")
    ping = github_bodies("ping")
    base = list(github(ping, "ping", None).items())

    async def main() -> list[int]:
        async with http(asgi, "10.0.0.1") as proxy:
            statuses = []
            for sender in ("203.0.113.1", "203.0.113.2"):  # two senders, through two proxies
                joined = [*base, ("X-Forwarded-For", f"{sender}, 10.9.9.9")]
                split = [*base, ("X-Forwarded-For", sender), ("X-Forwarded-For", "10.9.9.9")]
                statuses.append((await proxy.post("/hooks/github", content=ping, headers=joined)).status_code)
                statuses.append((await proxy.post("/hooks/github", content=ping, headers=split)).status_code)
            return statuses

    # one line: each sender its own budget (200, then 429 for its second request); split: the same
    assert run(main()) == [200, 429, 200, 429]


def test_a_keep_alive_connection_is_closed_after_its_share_of_deliveries(
    make_asgi: Callable[..., FlywheelASGI],
    settings: Settings,
    engine: Engine,
    workspace_id: int,
    github_bodies: Callable[[str], bytes],
) -> None:
    """So that a sender's connections, opened together on one worker, spread over the workers."""
    from plugin.web.hooks_asgi import KEEPALIVE_REQUESTS

    secret(settings, engine, workspace_id, "github")
    asgi = make_asgi()
    ping = github_bodies("ping")

    async def main() -> tuple[list[str | None], list[str | None]]:
        one = httpx.ASGITransport(app=asgi, client=("127.0.0.1", 50001))
        other = httpx.ASGITransport(app=asgi, client=("127.0.0.1", 50002))
        async with (
            httpx.AsyncClient(transport=one, base_url="http://flywheel.test") as a,
            httpx.AsyncClient(transport=other, base_url="http://flywheel.test") as b,
        ):
            first = []
            for n in range(KEEPALIVE_REQUESTS + 1):
                answer = await a.post("/hooks/github", content=ping, headers=github(ping, "ping", f"p-{n}"))
                assert answer.status_code == 200
                first.append(answer.headers.get("connection"))
                if n == 3:  # another connection meanwhile has a count of its own
                    await b.post("/hooks/github", content=ping, headers=github(ping, "ping", "q-0"))
            second = [
                (
                    await b.post("/hooks/github", content=ping, headers=github(ping, "ping", f"q-{n}"))
                ).headers.get("connection")
                for n in range(1, KEEPALIVE_REQUESTS)
            ]
            return first, second

    first, second = run(main())
    assert first[: KEEPALIVE_REQUESTS - 1] == [None] * (KEEPALIVE_REQUESTS - 1)
    assert first[KEEPALIVE_REQUESTS - 1] == "close"  # the share is spent: closed after this answer
    assert first[KEEPALIVE_REQUESTS] is None  # a new connection from the same place starts again
    assert second[:-1] == [None] * (KEEPALIVE_REQUESTS - 2) and second[-1] == "close"
