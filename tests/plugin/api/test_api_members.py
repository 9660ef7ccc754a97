"""``/api/v1/members``: search, ranking, filters, cursors, detail, timeline, consent with ETags."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.plugin.api.conftest import Auth, every_item


def test_members_ranked_by_a_score_page_by_page_without_gaps_or_repeats(
    client: FlaskClient, auth: Auth, scored: dict[str, int]
) -> None:
    sales = auth("sales")
    whole = client.get("/api/v1/members?sort=advocate&limit=200", headers=sales).json["items"]
    paged = every_item(client, sales, "/api/v1/members?sort=advocate&limit=3")
    assert [m["id"] for m in paged] == [m["id"] for m in whole] and len(whole) > 6
    scores = [m["scores"]["advocate"]["score"] for m in whole]
    assert scores == sorted(scores, reverse=True)
    assert whole[0]["id"] == scored["ann"]  # the weekly answerer leads the advocates


def test_filters_narrow_the_list_to_what_they_name(
    client: FlaskClient, auth: Auth, scored: dict[str, int]
) -> None:
    sales = auth("sales")
    hot = client.get("/api/v1/members?hot=true", headers=sales).json["items"]
    assert scored["cto"] in {m["id"] for m in hot} and all(m["scores"]["lead"]["hot"] for m in hot)
    customers = every_item(client, sales, "/api/v1/members?segment=customer&limit=50")
    assert {scored[p] for p in ("cara", "sid")} <= {m["id"] for m in customers}
    assert scored["fan0"] not in {m["id"] for m in customers}
    found = client.get("/api/v1/members?q=dana", headers=sales).json["items"]
    assert [m["id"] for m in found] == [scored["cto"]]
    high = client.get("/api/v1/members?sort=advocate&min_score=50", headers=sales).json["items"]
    assert high and all(m["scores"]["advocate"]["score"] >= 50 for m in high)
    bad = client.get("/api/v1/members?min_score=50", headers=sales)
    assert bad.status_code == 422 and "min_score" in bad.json["errors"]
    assert bad.headers["Content-Type"] == "application/problem+json"


def test_a_member_detail_has_scores_with_reasons_and_a_timeline(
    client: FlaskClient, auth: Auth, scored: dict[str, int]
) -> None:
    sales = auth("sales")
    noa = client.get(f"/api/v1/members/{scored['noa']}", headers=sales)
    assert noa.status_code == 200 and noa.json["display_name"] == "נועה כהן"
    assert noa.json["scores"]["advocate"]["reasons"] and noa.json["consents"] == {}
    timeline = every_item(client, sales, f"/api/v1/members/{scored['ann']}/timeline?limit=5")
    assert len(timeline) == 24 and timeline[0]["occurred_at"] >= timeline[-1]["occurred_at"]


def test_consent_edits_need_the_etag_they_read_and_refuse_a_stale_one(
    client: FlaskClient, auth: Auth, scored: dict[str, int]
) -> None:
    admin = auth("admin")
    url = f"/api/v1/members/{scored['ann']}/consent"
    first = client.get(url, headers=admin)
    etag = first.headers["ETag"]
    assert client.put(url + "/research", json={"granted": True}, headers=admin).status_code == 428
    done = client.put(url + "/research", json={"granted": True}, headers={**admin, "If-Match": etag})
    assert done.status_code == 200 and done.json["research"]["granted"] is True
    stale = client.put(url + "/research", json={"granted": False}, headers={**admin, "If-Match": etag})
    assert stale.status_code == 412
    assert client.get(url, headers=admin).json["research"]["granted"] is True  # the stale edit lost nothing
    researcher = client.get(url, headers=auth("researcher")).json
    assert set(researcher) == {"research"}
    assert (
        client.put(
            url + "/research", json={"granted": False}, headers={**auth("marketer"), "If-Match": etag}
        ).status_code
        == 403
    )


def test_input_no_column_can_hold_is_refused_with_a_problem_not_a_crash(
    client: FlaskClient, auth: Auth, scored: dict[str, int]
) -> None:
    import base64

    admin = auth("admin")

    def cursor(key: str) -> str:
        return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")

    for key in ("[null]", "[3000000000]", "[-1]", "[1e999]"):
        answer = client.get(f"/api/v1/members?cursor={cursor(key)}", headers=admin)
        assert answer.status_code == 400 and "cursor" in answer.json["errors"], key
    url = f"/api/v1/members/{scored['ann']}/consent"
    etag = client.get(url, headers=admin).headers["ETag"]
    nul = client.put(
        url + "/research", json={"granted": True, "source": "a\u0000b"}, headers={**admin, "If-Match": etag}
    )
    assert nul.status_code == 422 and nul.headers["Content-Type"] == "application/problem+json"
    assert client.get("/api/v1/members?q=a%00b", headers=admin).status_code == 422
    anyone = client.put(url + "/research", json={"granted": False}, headers={**admin, "If-Match": "*"})
    assert anyone.status_code == 200 and anyone.json["research"]["granted"] is False  # RFC 9110: * matches
    assert (
        client.get("/api/v1/members?q=_", headers=admin).json["items"] == []
    )  # _ is a character, not a wildcard
