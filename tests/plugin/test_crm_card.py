"""Signals inside the CRM record: the HubSpot classic CRM card's data fetch (v3-signed, one portal
per workspace) and the signed, expiring member page a CRM frames. Requests are signed here with
HubSpot's own Python client, so the check is against HubSpot's implementation, not ours."""

from __future__ import annotations

import dataclasses
import secrets
import time
import unicodedata
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import jsonschema
import orjson
import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from hubspot.utils.signature import Signature
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from plugin.cli import cli
from plugin.db.models import CrmConnection, CrmLink
from plugin.errors import ConfigError, ValidationFailed
from plugin.services.crm_card import embed_token, signed_uri, v3_signature
from plugin.services.crm_connections import save_connection, set_hubspot_card
from plugin.services.members import member_scores
from plugin.services.panel_invites import link_token
from plugin.services.workspaces import ensure_workspace
from plugin.settings import Settings, frame_ancestors, load_settings
from plugin.web.app import create_app
from tests.plugin.api.conftest import app, client, scored  # noqa: F401  (the API tests' fixtures)

PORTAL = "4455667"
SF_FRAMERS = "https://*.lightning.force.com https://*.my.salesforce.com"

# The documented response of a classic CRM card's data fetch (see plugin/services/crm_card.py for
# the sources): only documented fields, each of its documented type.
DATA_TYPES = ["BOOLEAN", "CURRENCY", "DATE", "DATETIME", "EMAIL", "LINK", "NUMERIC", "STRING", "STATUS"]
ACTION = {
    "type": "object",
    "required": ["type", "uri", "label"],
    "properties": {
        "type": {"enum": ["IFRAME", "ACTION_HOOK", "CONFIRMATION_ACTION_HOOK"]},
        "width": {"type": "integer"},
        "height": {"type": "integer"},
        "uri": {"type": "string", "pattern": "^https?://"},
        "label": {"type": "string"},
    },
    "additionalProperties": False,
}
PROPERTY = {
    "type": "object",
    "required": ["label", "dataType", "value"],
    "properties": {
        "label": {"type": "string", "minLength": 1},
        "dataType": {"enum": DATA_TYPES},
        "value": {"type": ["string", "number", "boolean"]},
        "optionType": {"enum": ["DEFAULT", "SUCCESS", "WARNING", "DANGER", "INFO"]},
    },
    "additionalProperties": False,
    "allOf": [
        {
            "if": {"properties": {"dataType": {"const": "STATUS"}}},
            "then": {"required": ["optionType"]},
        },
        {
            "if": {"properties": {"dataType": {"const": "BOOLEAN"}}},
            "then": {"properties": {"value": {"type": "boolean"}}},
        },
        {
            "if": {"properties": {"dataType": {"const": "DATE"}}},
            "then": {"properties": {"value": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"}}},
        },
    ],
}
CARD_SCHEMA = {
    "type": "object",
    "required": ["results"],
    "properties": {
        "results": {
            "type": "array",
            "maxItems": 5,
            "items": {
                "type": "object",
                "required": ["objectId", "title", "link", "properties"],
                "properties": {
                    "objectId": {"type": "integer"},
                    "title": {"type": "string", "minLength": 1},
                    "link": {"type": ["string", "null"]},
                    "properties": {"type": "array", "items": PROPERTY},
                    "actions": {"type": "array", "items": ACTION},
                },
                "additionalProperties": False,
            },
        },
        "primaryAction": ACTION,
        "secondaryActions": {"type": "array", "items": ACTION},
        "settingsAction": ACTION,
    },
    "additionalProperties": False,
}


def hubspot_uri(uri: str) -> str:
    """What HubSpot signs: the URI with :/?@!$'()*,; percent-decoded (written apart from the app's)."""
    for ch in ":/?@!$'()*,;":
        uri = uri.replace(quote(ch, safe=""), ch)
    return uri


def now_ms(offset: timedelta = timedelta()) -> str:
    return str(int((time.time() + offset.total_seconds()) * 1000))


def fetch(
    web: FlaskClient,
    secret: str,
    *,
    email: str | None = None,
    object_id: str = "1",
    object_type: str = "CONTACT",
    portal: str = PORTAL,
    base: str = "http://localhost",
    timestamp: str | None = None,
    signed_path: str | None = None,
) -> Any:
    """A card data fetch as HubSpot makes it: GET, default parameters, the contact's email."""
    params = {"userId": "12", "userEmail": "rep@vendor.example", "associatedObjectId": object_id,
              "associatedObjectType": object_type, "portalId": portal}  # fmt: skip
    if email is not None:
        params["email"] = email
    path = "/crm/hubspot/card?" + urlencode(params)
    ts = timestamp or now_ms()
    uri = hubspot_uri(base + (signed_path or path))
    signature = Signature.get_signature(secret, "", "v3", http_uri=uri, http_method="GET", timestamp=ts)
    headers = {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": ts}
    return web.get(path, headers=headers)


@pytest.fixture
def card_secret(engine: Engine, settings: Settings, workspace_id: int, scored: dict[str, int]) -> str:  # noqa: F811
    """The workspace's HubSpot connection answering PORTAL's cards; sid's contact is linked as 9001."""
    secret = secrets.token_urlsafe(32)
    row = save_connection(engine, settings, workspace_id, "hubspot", {"token": secrets.token_hex(8)}, None)
    set_hubspot_card(engine, settings, row, PORTAL, secret)
    with engine.begin() as conn:
        conn.execute(insert(CrmLink).values(connection_id=row.id, member_id=scored["sid"], crm_id="9001"))
    return secret


def _props(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["label"]: p for p in result["properties"]}


def test_a_signed_card_request_gets_the_documented_shape_with_each_signal_and_its_reasons(
    client: FlaskClient,  # noqa: F811
    engine: Engine,
    card_secret: str,
    scored: dict[str, int],  # noqa: F811
) -> None:
    answer = fetch(client, card_secret, email="ann@gmail.com")
    assert answer.status_code == 200 and answer.mimetype == "application/json", answer.text
    card = answer.json
    jsonschema.validate(card, CARD_SCHEMA)
    ann, *activities = card["results"]
    with Session(engine) as session:
        stored = member_scores(session, scored["ann"])
    assert ann["objectId"] == scored["ann"] and ann["title"] == "Ann"
    props = _props(ann)
    assert props["Advocate level"]["value"].startswith(stored["advocate"]["label"])
    assert props["Advocate level: why"]["value"] == "; ".join(stored["advocate"]["reasons"][:3])
    assert "Churn risk" not in props  # not a customer
    assert len(activities) == 4 and all(a["properties"][1]["dataType"] == "DATE" for a in activities)
    assert [a["properties"][1]["value"] for a in activities] == sorted(
        (a["properties"][1]["value"] for a in activities), reverse=True
    )
    page = urlsplit(ann["link"])
    assert card["primaryAction"]["uri"] == ann["link"] and page.path.startswith("/embed/member/")
    shown = client.get(page.path)
    assert shown.status_code == 200 and "Ann" in shown.text

    hot = fetch(client, card_secret, email="dana@bigco.io").json
    lead = _props(hot["results"][0])
    assert lead["Hot lead"]["value"] is True and "hot" in lead["Lead grade"]["value"]

    by_link = fetch(client, card_secret, object_id="9001").json  # no email: the CRM link finds sid
    jsonschema.validate(by_link, CARD_SCHEMA)
    assert by_link["results"][0]["objectId"] == scored["sid"]
    churn = _props(by_link["results"][0])["Churn risk"]
    with Session(engine) as session:
        band = member_scores(session, scored["sid"])["churn"]["label"]
    expected = {"high": "DANGER", "medium": "WARNING", "low": "SUCCESS"}[band]
    assert churn["value"].startswith(band) and churn["optionType"] == expected


def test_unsigned_forged_stale_and_other_portals_requests_are_refused(
    client: FlaskClient,  # noqa: F811
    card_secret: str,
) -> None:
    unsigned = client.get(f"/crm/hubspot/card?portalId={PORTAL}&email=ann@gmail.com")
    assert unsigned.status_code == 401 and unsigned.mimetype == "application/problem+json"
    forged = fetch(client, secrets.token_urlsafe(32), email="ann@gmail.com")
    assert forged.status_code == 401 and forged.json["detail"] == "the request signature does not match"
    other_query = "/crm/hubspot/card?" + urlencode({"portalId": PORTAL, "email": "dana@bigco.io"})
    swapped = fetch(client, card_secret, email="ann@gmail.com", signed_path=other_query)
    assert swapped.status_code == 401
    stale = fetch(client, card_secret, email="ann@gmail.com", timestamp=now_ms(-timedelta(minutes=6)))
    assert stale.status_code == 401 and "5 minutes" in stale.json["detail"]
    assert stale.mimetype == "application/problem+json"
    elsewhere = fetch(client, card_secret, email="ann@gmail.com", portal="1")
    assert elsewhere.status_code == 401 and elsewhere.mimetype == "application/problem+json"
    stranger = fetch(client, card_secret, email="nobody@example.org", object_id="777")
    assert stranger.status_code == 200 and stranger.json == {"results": []}
    company = fetch(client, card_secret, email="ann@gmail.com", object_type="COMPANY")
    assert company.status_code == 200 and company.json == {"results": []}
    for answer in (unsigned, forged, stale, elsewhere):
        assert card_secret not in answer.text


def test_the_signature_covers_the_public_address_and_hubspots_decoded_characters(
    engine: Engine,
    settings: Settings,
    card_secret: str,
    scored: dict[str, int],  # noqa: F811
) -> None:
    public = "https://flywheel.example.com"
    behind_proxy = create_app(dataclasses.replace(settings, public_url=public), engine).test_client()
    ok = fetch(behind_proxy, card_secret, email="ann@gmail.com", base=public)
    assert ok.status_code == 200 and ok.json["results"][0]["link"].startswith(f"{public}/embed/member/")
    assert fetch(behind_proxy, card_secret, email="ann@gmail.com").status_code == 401  # signed for localhost
    assert signed_uri("https://x.example/p?a=%3a%2F%40%20%D7%90") == "https://x.example/p?a=:/@%20%D7%90"
    uri, ts = "https://x.example/hook?e=a%40b.c", now_ms()
    assert v3_signature(card_secret, "POST", uri, "{}", ts) == Signature.get_signature(
        card_secret, "{}", "v3", http_uri="https://x.example/hook?e=a@b.c", http_method="POST", timestamp=ts
    )


def test_a_portal_shows_one_workspaces_cards(engine: Engine, settings: Settings, card_secret: str) -> None:
    with Session(engine) as session:
        other, _ = ensure_workspace(session, "other", "Other")
        session.commit()
        other_id = other.id
    row = save_connection(engine, settings, other_id, "hubspot", {"token": secrets.token_hex(8)}, None)
    with pytest.raises(ValidationFailed, match="already shows another workspace"):
        set_hubspot_card(engine, settings, row, PORTAL, secrets.token_urlsafe(16))
    with pytest.raises(ValidationFailed, match="number"):
        set_hubspot_card(engine, settings, row, "12ab", secrets.token_urlsafe(16))


class _Names(HTMLParser):
    """The text of each element with a ``dir`` attribute, with that attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str, str]] = []
        self.attributes: set[str] = set()
        self._open: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.attributes |= {f"{name}={value or ''}" for name, value in attrs}
        if "dir" in values:
            self._open.append((tag, str(values["dir"])))
            self.found.append((tag, str(values["dir"]), ""))

    def handle_data(self, data: str) -> None:
        if self._open and self.found:
            tag, direction, text = self.found[-1]
            self.found[-1] = (tag, direction, text + data)

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1][0] == tag:
            self._open.pop()


def auto_direction(text: str) -> str:
    """HTML's dir=auto: the direction of the first strong character (bidi class L, R or AL)."""
    for ch in text:
        kind = unicodedata.bidirectional(ch)
        if kind in ("R", "AL"):
            return "rtl"
        if kind == "L":
            return "ltr"
    return "ltr"


def test_the_embed_page_frames_only_in_the_crms_shows_the_signals_and_writes_hebrew_right_to_left(
    engine: Engine,
    settings: Settings,
    workspace_id: int,
    scored: dict[str, int],  # noqa: F811
) -> None:
    framed = dataclasses.replace(settings, crm_frame_ancestors=frame_ancestors(SF_FRAMERS))
    web = create_app(framed, engine).test_client()
    later = datetime.now(UTC) + timedelta(days=1)
    page = web.get(f"/embed/member/{embed_token(framed, workspace_id, scored['noa'], later)}")
    assert page.status_code == 200 and page.mimetype == "text/html"
    csp = page.headers["Content-Security-Policy"]
    assert f"frame-ancestors {SF_FRAMERS}" in csp and "script-src" not in csp and "default-src 'none'" in csp
    assert "X-Frame-Options" not in page.headers and page.headers["Referrer-Policy"] == "no-referrer"
    parser = _Names()
    parser.feed(page.text)
    assert "<script" not in page.text.lower() and "javascript:" not in page.text.lower()
    assert not [a for a in parser.attributes if a.startswith("on")]  # no event handler attributes
    names = [(tag, d, text) for tag, d, text in parser.found if tag == "h1"]
    assert names == [("h1", "auto", "נועה כהן")] and auto_direction(names[0][2]) == "rtl"
    with Session(engine) as session:
        advocate = member_scores(session, scored["noa"])["advocate"]
    assert "Advocate level" in page.text and advocate["reasons"][0].split(" (")[0] in page.text
    assert "Last activities" in page.text and page.text.count("<time ") == 3

    layla = web.get(f"/embed/member/{embed_token(framed, workspace_id, scored['layla'], later)}")
    parser = _Names()
    parser.feed(layla.text)
    assert [auto_direction(t) for tag, d, t in parser.found if tag == "h1" and d == "auto"] == ["rtl"]
    ann = web.get(f"/embed/member/{embed_token(framed, workspace_id, scored['ann'], later)}")
    assert 'dir="auto">Ann</h1>' in ann.text and auto_direction("Ann") == "ltr"

    token = embed_token(settings, workspace_id, scored["noa"], later)
    unframed = create_app(settings, engine).test_client().get(f"/embed/member/{token}")
    assert "frame-ancestors 'none'" in unframed.headers["Content-Security-Policy"]


def test_the_embed_page_refuses_expired_tampered_and_foreign_tokens(
    client: FlaskClient,  # noqa: F811
    settings: Settings,
    workspace_id: int,
    scored: dict[str, int],  # noqa: F811
) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    later = datetime.now(UTC) + timedelta(days=1)
    expired = client.get(f"/embed/member/{embed_token(settings, workspace_id, scored['ann'], past)}")
    assert expired.status_code == 410 and "Ann" not in expired.text
    good = embed_token(settings, workspace_id, scored["ann"], later)
    payload, _, signature = good.rpartition(".")
    # Flip a middle character: the last one of base64 carries padding bits, and a change there can
    # decode to the same signature.
    middle = len(signature) // 2
    flipped = signature[:middle] + ("A" if signature[middle] != "A" else "B") + signature[middle + 1 :]
    assert client.get(f"/embed/member/{payload}.{flipped}").status_code == 404
    other_member = embed_token(settings, workspace_id, scored["rex"], later).split(".")[0]
    assert client.get(f"/embed/member/{other_member}.{signature}").status_code == 404
    panel_link = link_token(settings, 1, scored["ann"], "accept", later)  # signed, but for panels
    assert client.get(f"/embed/member/{panel_link}").status_code == 404
    elsewhere = embed_token(settings, workspace_id + 1000, scored["ann"], later)  # not that workspace's
    assert client.get(f"/embed/member/{elsewhere}").status_code == 404
    refused = client.get(f"/embed/member/{payload}.{flipped}")
    assert "Ann" not in refused.text and refused.headers["Cache-Control"] == "no-store"


def test_frame_ancestors_setting_accepts_origins_and_refuses_anything_else() -> None:
    assert load_settings({}).crm_frame_ancestors == "'none'"
    spaced = load_settings({"FLYWHEEL_CRM_FRAME_ANCESTORS": f"  {SF_FRAMERS} "})
    assert spaced.crm_frame_ancestors == SF_FRAMERS
    for bad in ("https://a.example; script-src *", "'none' https://a.example", "javascript:", "*"):
        with pytest.raises(ConfigError):
            load_settings({"FLYWHEEL_CRM_FRAME_ANCESTORS": bad})


def test_cli_sets_the_card_without_printing_its_secret_and_makes_embed_links(
    runner: CliRunner,
    engine: Engine,
    settings: Settings,
    workspace_id: int,
    scored: dict[str, int],  # noqa: F811
    client: FlaskClient,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    save_connection(engine, settings, workspace_id, "hubspot", {"token": secrets.token_hex(8)}, None)
    secret = secrets.token_urlsafe(24)
    var = "FW_TEST_HUBSPOT_APP_SECRET"
    monkeypatch.setenv(var, secret)
    args = ["crm", "card", "hubspot", "--portal-id", PORTAL, "--client-secret-env", var]
    result = runner.invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout) == {
        "crm": "hubspot", "workspace": "default", "portal_id": PORTAL, "data_fetch_url": None,
    }  # fmt: skip
    with engine.connect() as conn:
        stored = conn.execute(select(CrmConnection.settings)).scalar_one()
    assert secret not in result.output and secret not in orjson.dumps(stored).decode()
    assert fetch(client, secret, email="ann@gmail.com").status_code == 200  # the secret that was stored
    shown = runner.invoke(cli, ["crm", "card", "hubspot"])
    assert PORTAL in shown.stdout and secret not in shown.output
    monkeypatch.delenv(var)
    unset = runner.invoke(cli, [*args, "--json"])
    assert unset.exit_code == 2 and var in unset.stdout
    off = runner.invoke(cli, ["crm", "card", "hubspot", "--off", "--json"])
    assert orjson.loads(off.stdout)["portal_id"] is None
    assert (
        fetch(client, secret, email="ann@gmail.com").status_code == 401
    )  # the card is off: no portal is served

    no_url = runner.invoke(cli, ["crm", "embed-link", "ann@gmail.com", "--json"])
    assert no_url.exit_code == 3 and "FLYWHEEL_PUBLIC_URL" in no_url.stdout
    monkeypatch.setenv("FLYWHEEL_PUBLIC_URL", "https://flywheel.example.com")
    made = runner.invoke(cli, ["crm", "embed-link", "ann@gmail.com", "--days", "3", "--json"])
    assert made.exit_code == 0, made.output
    link = orjson.loads(made.stdout)
    assert link["member_id"] == scored["ann"]
    assert link["url"].startswith("https://flywheel.example.com/embed/member/")
    expires = datetime.fromisoformat(link["expires_at"])
    assert timedelta(days=2, hours=23) < expires - datetime.now(UTC) <= timedelta(days=3)
    assert client.get(urlsplit(link["url"]).path).status_code == 200
    assert runner.invoke(cli, ["crm", "embed-link", "ann@gmail.com", "--days", "400"]).exit_code == 2
