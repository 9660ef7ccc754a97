"""Score crossings leave as webhooks, in the scoring run's own transaction, with the member's
email only where their consent for the purpose is in force."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import jsonschema
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from plugin.db.models import Consent, Member, ScoreEvent, WebhookMessage
from plugin.services import score_run
from plugin.services.webhook_endpoints import add_endpoint
from plugin.settings import Settings
from tests.plugin.test_score import score
from webhooks.events import EVENT_TYPES


def _schema(event_type: str) -> dict[str, object]:
    from importlib import resources

    text = resources.files("webhooks").joinpath(f"schema/{event_type}.v1.json").read_text("utf-8")
    return dict(json.loads(text))


def _subscribe(engine: Engine, settings: Settings, workspace_id: int, events: str | None) -> None:
    development = dataclasses.replace(
        settings, webhook_allow_http=True, webhook_allowed_networks="127.0.0.0/8"
    )
    with Session(engine) as session:
        add_endpoint(session, development, workspace_id, "http://127.0.0.1:9/hook", events=events)
        session.commit()


def _messages(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [
            json.loads(b)
            for b in conn.execute(select(WebhookMessage.body).order_by(WebhookMessage.id)).scalars()
        ]


def test_each_crossing_becomes_one_valid_message_and_a_rerun_adds_none(
    engine: Engine, settings: Settings, workspace_id: int, people: dict[str, int]
) -> None:
    _subscribe(engine, settings, workspace_id, None)
    report = score(engine, workspace_id)
    with engine.connect() as conn:
        crossings = conn.execute(select(ScoreEvent.event, ScoreEvent.subject_id)).all()
    messages = _messages(engine)
    assert report.webhooks_queued == len(crossings) == len(messages) > 0
    for message in messages:
        assert message["type"] in EVENT_TYPES
        jsonschema.validate(message, _schema(str(message["type"])))
    hot = [m for m in messages if m["type"] == "lead.signal"]
    cto = next(m for m in hot if m["data"]["member"]["id"] == people["cto"])  # type: ignore[index]
    assert cto["data"]["triggers"] and cto["data"]["score"]["hot"] is True  # type: ignore[index]
    assert all(m["data"]["reasons"] for m in messages)  # type: ignore[index]
    score(engine, workspace_id)  # nothing crossed again: nothing sent again
    assert len(_messages(engine)) == len(messages)


@pytest.mark.parametrize(
    ("consents", "shown"),
    [
        ([], False),
        ([("marketing", True)], False),  # marketing consent is not sales consent
        ([("sales", True)], True),
        ([("sales", True), ("sales", False)], False),  # the latest word counts: withdrawn
    ],
)
def test_email_only_with_consent_for_the_events_purpose(
    engine: Engine,
    settings: Settings,
    workspace_id: int,
    people: dict[str, int],
    consents: list[tuple[str, bool]],
    shown: bool,
) -> None:
    _subscribe(engine, settings, workspace_id, "lead.signal")
    with Session(engine) as session:
        cto = session.get(Member, people["cto"])
        assert cto is not None and cto.primary_email
        email = cto.primary_email
        for i, (purpose, granted) in enumerate(consents):
            session.add(
                Consent(
                    workspace_id=workspace_id,
                    member_id=cto.id,
                    purpose=purpose,
                    granted=granted,
                    source="test",
                    recorded_at=datetime(2026, 1, 1 + i, tzinfo=UTC),
                )
            )
        session.commit()
    score(engine, workspace_id)
    (message,) = [m for m in _messages(engine) if m["data"]["member"]["id"] == people["cto"]]  # type: ignore[index]
    member = message["data"]["member"]  # type: ignore[index]
    assert member.get("email") == (email if shown else None)
    assert member["name"] and message["data"]["reasons"]  # type: ignore[index]


def test_scores_and_their_messages_commit_together(
    engine: Engine,
    settings: Settings,
    workspace_id: int,
    people: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _subscribe(engine, settings, workspace_id, None)

    def broken(*args: object, **kwargs: object) -> int:
        raise RuntimeError("the outbox is unwritable")

    monkeypatch.setattr(score_run, "emit_run_events", broken)
    with pytest.raises(RuntimeError):
        score(engine, workspace_id)
    with engine.connect() as conn:
        assert conn.execute(select(ScoreEvent.id)).first() is None  # no crossing without its message
    monkeypatch.undo()
    assert score(engine, workspace_id).webhooks_queued > 0


def test_no_endpoint_no_messages(engine: Engine, workspace_id: int, people: dict[str, int]) -> None:
    report = score(engine, workspace_id)
    assert sum(report.events.values()) > 0 and report.webhooks_queued == 0 and not _messages(engine)
    assert datetime.now(UTC)  # the run finished normally
