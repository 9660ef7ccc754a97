"""Operations: liveness, readiness (database, schema, broker), Prometheus metrics, and JSON logs
that never carry a secret."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from connectors.sources.signatures import standard_webhooks_signature
from plugin.db.engine import make_engine
from plugin.db.migrate import downgrade, head_revision, upgrade
from plugin.db.models import CrmConnection, CrmSyncRun, ScoreRun, WebhookAttempt, WebhookDelivery
from plugin.errors import ConfigError
from plugin.logs import configure_logging
from plugin.services.hook_secrets import set_hook_secret
from plugin.services.webhook_endpoints import add_endpoint
from plugin.services.webhook_outbox import Event, emit
from plugin.settings import Settings, load_settings
from plugin.web.app import create_app
from plugin.web.server import metrics_dir, ops_options

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def make_app(settings: Settings, engine: Engine, workspace_id: int) -> Iterator[Callable[..., Flask]]:
    def make(clock: datetime = NOW, **changes: object) -> Flask:
        return create_app(dataclasses.replace(settings, **changes), engine, clock=lambda: clock)  # type: ignore[arg-type]

    yield make
    configure_logging(settings)  # back to plain text for whatever runs next


@pytest.fixture
def client(make_app: Callable[..., Flask]) -> FlaskClient:
    return make_app().test_client()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


def scrape(client: FlaskClient, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, parsed by prometheus_client's own parser."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.data
    assert response.content_type.startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


# -- health and readiness ---------------------------------------------------------------------------


def test_healthz_answers_without_the_database(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    app = make_app()
    gone = dataclasses.replace(load_settings({}), database_url=f"sqlite:///{tmp_path}/no/such/dir/x.db")
    app.extensions["flywheel.engine"] = make_engine(gone)
    client = app.test_client()
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 503
    body = ready.json
    assert body is not None and body["failing"] == ["database", "schema"]
    assert "FLYWHEEL_DATABASE_URL" in body["checks"]["database"]["hint"]


def test_ready_when_the_database_answers_at_the_head_revision(client: FlaskClient, engine: Engine) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.json
    assert response.json == {
        "status": "ready",
        "checks": {"database": {"ok": True}, "schema": {"ok": True, "revision": head_revision(engine)}},
    }


def test_an_empty_database_is_not_ready_and_says_to_upgrade(
    make_app: Callable[..., Flask], settings: Settings, tmp_path: Path
) -> None:
    app = make_app()
    empty = dataclasses.replace(settings, database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    app.extensions["flywheel.engine"] = make_engine(empty)
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.content_type == "application/problem+json"
    body = response.json
    assert body is not None and body["failing"] == ["schema"]
    assert body["checks"]["schema"]["error"] == "the database has no Flywheel schema"
    assert "run `flywheel db upgrade`" in body["detail"]


def test_a_schema_behind_the_code_is_not_ready_until_upgraded(settings: Settings, tmp_path: Path) -> None:
    fresh = dataclasses.replace(settings, database_url=f"sqlite:///{tmp_path / 'fresh.db'}")
    engine = make_engine(fresh)
    client = create_app(fresh, engine).test_client()  # the embedded default migrates itself
    assert client.get("/readyz").status_code == 200
    downgrade(engine, "-1")  # e.g. a database restored from before the last release
    behind = client.get("/readyz")
    assert behind.status_code == 503
    schema = behind.json["checks"]["schema"]  # type: ignore[index]
    assert schema["expected"] == head_revision(engine) and schema["revision"] != schema["expected"]
    assert "flywheel db upgrade" in schema["hint"]
    upgrade(engine)
    assert client.get("/readyz").status_code == 200
    engine.dispose()


@pytest.mark.parametrize("scheme", ["redis", "amqp"])
def test_a_dead_broker_is_not_ready_and_its_password_is_not_shown(
    make_app: Callable[..., Flask], scheme: str
) -> None:
    password = secrets.token_urlsafe(12)
    url = f"{scheme}://flywheel:{password}@127.0.0.1:{closed_port()}/0"
    response = make_app(broker_url=url).test_client().get("/readyz")
    assert response.status_code == 503
    body = response.json
    assert body is not None and body["failing"] == ["broker"]
    assert "FLYWHEEL_BROKER_URL" in body["checks"]["broker"]["hint"]
    assert body["checks"]["database"] == {"ok": True}
    assert password not in response.get_data(as_text=True)
    assert "flywheel:***@127.0.0.1" in body["checks"]["broker"]["error"]


def test_ready_with_a_live_redis_broker(make_app: Callable[..., Flask]) -> None:
    if not redis_up():
        pytest.skip("no Redis at 127.0.0.1:6379 to check a live broker against")
    response = make_app(broker_url="redis://127.0.0.1:6379/0").test_client().get("/readyz")
    assert response.status_code == 200, response.json
    assert response.json["checks"]["broker"] == {"ok": True}  # type: ignore[index]


# -- metrics ------------------------------------------------------------------------------------------


def _signed_generic(key: str, body: bytes, msg_id: str) -> dict[str, str]:
    stamp = str(int(NOW.timestamp()))
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": standard_webhooks_signature(key, msg_id, stamp, body),
    }


def test_hook_counter_moves_after_a_signed_inbound_hook(
    client: FlaskClient, settings: Settings, engine: Engine, workspace_id: int
) -> None:
    key = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    with Session(engine) as session:
        set_hook_secret(session, settings, workspace_id, "generic:events", key)
        session.commit()
    record = {
        "id": "reg-1",
        "type": "event_registered",
        "occurred_at": "2026-11-20T09:00:00Z",
        "member": {"email": "kai@acme.io", "name": "Kai"},
    }
    body = json.dumps({"records": [record]}).encode()
    stored = ("flywheel_hook_events_total", (("outcome", "stored"), ("source", "generic:events")))
    refused = ("flywheel_hook_events_total", (("outcome", "unauthorized"), ("source", "generic")))
    before = scrape(client)
    ok = client.post("/hooks/generic/events", data=body, headers=_signed_generic(key, body, "msg_1"))
    assert ok.status_code == 200 and ok.json["status"] == "stored"  # type: ignore[index]
    forged = _signed_generic("whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(), body, "msg_2")
    assert client.post("/hooks/generic/events", data=body, headers=forged).status_code == 401
    after = scrape(client)
    assert after[stored] == before.get(stored, 0) + 1
    assert after[refused] == before.get(refused, 0) + 1
    requests = ("flywheel_http_requests_total", (("group", "hooks"), ("status_class", "2xx")))
    assert after[requests] >= before.get(requests, 0) + 1
    assert after[("flywheel_http_request_duration_seconds_count", (("group", "hooks"),))] >= 2


def test_webhook_queue_gauges_show_a_due_delivery(
    make_app: Callable[..., Flask], settings: Settings, engine: Engine, workspace_id: int
) -> None:
    app = make_app(
        clock=NOW + timedelta(seconds=90), webhook_allowed_networks="127.0.0.0/8", webhook_allow_http=True
    )
    with Session(engine) as session:
        add_endpoint(session, app.extensions["flywheel.settings"], workspace_id, "http://127.0.0.1:9/in")
        session.commit()
    with engine.begin() as conn:
        emit(conn, workspace_id, [Event("reward.granted", {"note": "due"})], now=NOW)
        emit(conn, workspace_id, [Event("reward.granted", {"note": "later"})], now=NOW + timedelta(hours=1))
    samples = scrape(app.test_client())
    assert samples[("flywheel_webhook_deliveries_pending", ())] == 2
    assert samples[("flywheel_webhook_deliveries_due", ())] == 1
    assert samples[("flywheel_webhook_oldest_due_age_seconds", ())] == pytest.approx(90, abs=1)
    assert samples[("flywheel_metrics_collector_up", (("collector", "webhook_queue"),))] == 1


def test_gauges_of_attempts_scoring_and_crm_runs(
    make_app: Callable[..., Flask], settings: Settings, engine: Engine, workspace_id: int
) -> None:
    app = make_app(webhook_allowed_networks="127.0.0.0/8", webhook_allow_http=True)
    with Session(engine) as session:
        add_endpoint(session, app.extensions["flywheel.settings"], workspace_id, "http://127.0.0.1:9/in")
        session.commit()
    with engine.begin() as conn:
        emit(conn, workspace_id, [Event("reward.granted", {"note": "x"})], now=NOW)
        delivery = conn.execute(WebhookDelivery.__table__.select()).first()
        assert delivery is not None
        attempts = [  # (minutes ago, status): the first is outside the hour
            (90, 200), (50, 200), (40, 503), (30, None), (10, 200), (5, 404),
        ]  # fmt: skip
        conn.execute(
            insert(WebhookAttempt),
            [
                {"delivery_id": delivery.id, "attempt": i + 1, "attempted_at": NOW - timedelta(minutes=m),
                 "status": st, "duration_ms": 12.0, "error": None if st else "timeout"}
                for i, (m, st) in enumerate(attempts)
            ],
        )  # fmt: skip
        conn.execute(
            insert(ScoreRun).values(
                workspace_id=workspace_id, kinds="advocate", mode="full", as_of=NOW,
                started_at=NOW - timedelta(minutes=10), finished_at=NOW - timedelta(minutes=7),
                members_scored=42, model_version="t", weights_hash="h",
            )
        )  # fmt: skip
        connection = conn.execute(
            insert(CrmConnection).values(workspace_id=workspace_id, kind="hubspot", credentials_encrypted="x")
        ).inserted_primary_key[0]
        for started, status, calls, counts in (
            (NOW - timedelta(days=2), "done", {"batch_upsert": 100}, {"created": 100}),
            (NOW - timedelta(hours=3), "done", {"batch_upsert": 2, "search": 1}, {"created": 3, "failed": 1}),
            (NOW - timedelta(hours=1), "failed", {"batch_upsert": 1}, {"failed": 2}),
        ):
            conn.execute(
                insert(CrmSyncRun).values(
                    connection_id=connection, started_at=started, status=status, calls=calls, counts=counts
                )
            )
    samples = scrape(app.test_client())
    outcome = "flywheel_webhook_attempts_last_hour"
    assert {k[1][0][1]: v for k, v in samples.items() if k[0] == outcome} == {
        "success": 2, "http_4xx": 1, "http_5xx": 1, "http_other": 0, "no_response": 1,
    }  # fmt: skip
    ws = (("workspace", "default"),)
    assert samples[("flywheel_score_last_run_duration_seconds", ws)] == pytest.approx(180)
    assert samples[("flywheel_score_last_run_age_seconds", ws)] == pytest.approx(420)
    assert samples[("flywheel_score_last_run_members", ws)] == 42
    runs = "flywheel_crm_sync_runs_last_day"
    assert samples[(runs, (("crm", "hubspot"), ("direction", "push"), ("status", "done")))] == 1
    assert samples[(runs, (("crm", "hubspot"), ("direction", "push"), ("status", "failed")))] == 1
    calls = "flywheel_crm_api_calls_last_day"
    assert samples[(calls, (("crm", "hubspot"), ("operation", "batch_upsert")))] == 3
    records = "flywheel_crm_records_last_day"
    assert samples[(records, (("crm", "hubspot"), ("outcome", "failed")))] == 3


def test_a_registered_collector_is_exposed_and_its_failure_spoils_nothing(client: FlaskClient) -> None:
    from prometheus_client.metrics_core import GaugeMetricFamily

    from plugin.services import metrics

    def extra_ok(_conn: object, _now: datetime) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily("flywheel_test_extra", "a test gauge", value=7)]

    def extra_broken(_conn: object, _now: datetime) -> list[GaugeMetricFamily]:
        raise RuntimeError("no such table: imaginary")

    metrics.register_collector(extra_ok, "test_ok")
    metrics.register_collector(extra_broken, "test_broken")
    try:
        samples = scrape(client)
    finally:
        metrics._extra.pop("test_ok")
        metrics._extra.pop("test_broken")
    assert samples[("flywheel_test_extra", ())] == 7
    assert samples[("flywheel_metrics_collector_up", (("collector", "test_broken"),))] == 0
    assert samples[("flywheel_metrics_collector_up", (("collector", "webhook_queue"),))] == 1


def test_metrics_token_is_enforced_when_set(make_app: Callable[..., Flask]) -> None:
    token = secrets.token_urlsafe(24)
    client = make_app(metrics_token=token).test_client()
    missing = client.get("/metrics")
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": "Bearer " + token[:-1]}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": token}).status_code == 401
    assert scrape(client, Authorization=f"Bearer {token}")
    assert client.get("/healthz").status_code == 200  # health and readiness stay open


def test_counts_of_every_worker_are_summed_in_multiprocess_mode(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "FLYWHEEL_DATABASE_URL": settings.database_url,
        "FLYWHEEL_SECRET_KEY": settings.secret_key or "",
        "FLYWHEEL_SECRET_KEY_FILE": str(tmp_path / "key"),
    }
    script = (
        "import sys\nfrom plugin.web.app import create_app\n"
        "client = create_app().test_client()\n"
        "if sys.argv[1] == 'serve':\n"
        "    for _ in range(3): assert client.get('/healthz').status_code == 200\n"
        "else:\n"
        "    sys.stdout.write(client.get('/metrics').get_data(as_text=True))\n"
    )

    def run(role: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", script, role],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("serve")  # a worker that served three requests and exited
    text = run("scrape")  # another worker answers the scrape
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("flywheel_http_requests_total", (("group", "ops"), ("status_class", "2xx")))] == 3
    assert ("flywheel_webhook_deliveries_due", ()) in samples


def test_serve_gives_its_workers_a_fresh_metrics_directory(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Recorded first, undone last: the variable ends as it was, whatever ops_options sets meanwhile.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    options = ops_options(settings)
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    try:
        assert directory.is_dir() and not any(directory.iterdir())
        assert callable(options["child_exit"]) and "accesslog" not in options
        options["on_exit"](None)
        assert not directory.exists()
    finally:
        monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    chosen = tmp_path / "chosen"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(chosen))
    assert metrics_dir() == (str(chosen), False) and chosen.is_dir()  # made when missing
    json_logs = ops_options(dataclasses.replace(settings, log_format="json"))
    assert json_logs["accesslog"] is None and "on_exit" not in json_logs  # the app logs each request


# -- logs ---------------------------------------------------------------------------------------------


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_json_log_lines_carry_no_secret(
    settings: Settings, capsys: pytest.CaptureFixture[str], make_app: Callable[..., Flask]
) -> None:
    configure_logging(dataclasses.replace(settings, log_format="json"))
    api_token = "fw_" + secrets.token_urlsafe(32)
    password = secrets.token_urlsafe(10)
    bearer = secrets.token_urlsafe(20)
    hubspot = "pat-na1-" + "-".join(secrets.token_hex(n) for n in (4, 2, 2, 2, 6))
    hook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    sf_session = "00D" + secrets.token_hex(6)[:12] + "!AQ" + secrets.token_urlsafe(30).replace("-", "x")
    log = logging.getLogger("flywheel.test")
    log.warning(
        "calling with token %s at %s",
        api_token,
        f"postgresql://flywheel:{password}@db.internal:5432/fw?password={password}",
        extra={
            "headers": {"Authorization": f"Bearer {bearer}", "Accept": "application/json"},
            "crm": f"HubSpot {hubspot}",
            "secret": hook_secret,
            "note": f"session {sf_session}",
        },
    )
    try:
        raise RuntimeError(f"refused Authorization: Bearer {bearer}")
    except RuntimeError:
        log.exception("it failed")
    text = capsys.readouterr().err
    for secret in (api_token, password, bearer, hubspot, hook_secret, sf_session):
        assert secret not in text
    first, second = _json_lines(text)[-2:]
    assert first["level"] == "WARNING" and first["logger"] == "flywheel.test"
    assert str(first["message"]).startswith(
        "calling with token fw_*** at postgresql://flywheel:***@db.internal"
    )
    assert first["headers"] == {"Authorization": "***", "Accept": "application/json"}
    assert first["secret"] == "***" and first["crm"] == "HubSpot pat-***"
    ts = datetime.fromisoformat(str(first["ts"]).replace("Z", "+00:00"))
    assert ts.utcoffset() == timedelta(0) and abs(datetime.now(UTC) - ts) < timedelta(minutes=1)
    assert "RuntimeError: refused Authorization: Bearer ***" in str(second["exception"])


def test_request_id_is_echoed_and_on_the_request_log_line(
    make_app: Callable[..., Flask], capsys: pytest.CaptureFixture[str]
) -> None:
    client = make_app(log_format="json").test_client()
    capsys.readouterr()
    query = secrets.token_urlsafe(12)
    given = client.get(f"/healthz?token={query}", headers={"X-Request-ID": "req-42"})
    assert given.headers["X-Request-ID"] == "req-42"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id <forged> line"})
    assert made.headers["X-Request-ID"] != "bad id <forged> line" and len(made.headers["X-Request-ID"]) == 32
    lines = [line for line in _json_lines(capsys.readouterr().err) if line["logger"] == "flywheel.request"]
    assert lines[0]["request_id"] == "req-42" and lines[0]["path"] == "/healthz"
    assert lines[0]["method"] == "GET" and lines[0]["status"] == 200
    assert isinstance(lines[0]["duration_ms"], float)
    assert lines[1]["request_id"] == made.headers["X-Request-ID"]
    assert query not in json.dumps(lines)


def test_secret_path_segments_are_masked_in_the_request_log(
    make_app: Callable[..., Flask], capsys: pytest.CaptureFixture[str]
) -> None:
    client = make_app(log_format="json").test_client()
    link = secrets.token_urlsafe(16)
    client.get(f"/dashboard/link/{link}")
    err = capsys.readouterr().err
    assert link not in err and "/dashboard/link/***" in err


def test_log_settings_are_checked() -> None:
    assert load_settings({"FLYWHEEL_LOG_FORMAT": "JSON", "FLYWHEEL_LOG_LEVEL": "warn"}).log_level == "WARNING"
    assert load_settings({}).log_format == "text" and load_settings({}).log_level == "INFO"
    with pytest.raises(ConfigError) as bad_format:
        load_settings({"FLYWHEEL_LOG_FORMAT": "xml"})
    assert bad_format.value.hint and "json" in bad_format.value.hint
    with pytest.raises(ConfigError) as bad_level:
        load_settings({"FLYWHEEL_LOG_LEVEL": "loud"})
    assert bad_level.value.hint and "INFO" in bad_level.value.hint


def test_text_logs_are_redacted_too(settings: Settings) -> None:
    handler = configure_logging(settings)
    stream = io.StringIO()
    try:
        sys.stderr, saved = stream, sys.stderr
        logging.getLogger("flywheel.test").error("retrying redis://:%s@cache:6379/0", "hunter2-long")
    finally:
        sys.stderr = saved
    assert "hunter2" not in stream.getvalue() and "redis://:***@cache" in stream.getvalue()
    assert handler in logging.getLogger().handlers
