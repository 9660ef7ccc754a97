"""The command line as a user meets it."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import Engine, select

from plugin.cli import cli
from plugin.db.models import ApiToken
from tests.plugin.helpers import record, write_jsonl

NAMES = {
    "en": "Olivia Bennett",
    "de": "Jürgen Weißmüller",
    "he": "נועה לוי",
    "ar": "فاطمة الزهراء",
    "zh": "王秀英",
    "ru": "Анна Смирнова",
}


def run(runner: CliRunner, *args: str) -> tuple[int, object]:
    result = runner.invoke(cli, [*args], catch_exceptions=False)
    try:
        return result.exit_code, json.loads(result.stdout)
    except json.JSONDecodeError:
        return result.exit_code, result.stdout


def test_init_shows_the_token_once_and_stores_only_its_hash(runner: CliRunner, engine: Engine) -> None:
    code, data = run(runner, "init", "--json")
    assert code == 0 and isinstance(data, dict)
    token = data["admin_token"]
    with engine.connect() as conn:
        stored = conn.execute(select(ApiToken.token_hash, ApiToken.role)).one()
    assert stored.role == "admin" and token not in stored.token_hash and len(stored.token_hash) == 64


def test_names_in_six_scripts_survive_ingest_and_members_show(runner: CliRunner, tmp_path: Path) -> None:
    rows = [
        record(f"n-{lang}", name=name, email=f"{lang}@example.org", locale=lang)
        for lang, name in NAMES.items()
    ]
    path = write_jsonl(tmp_path / "names.jsonl", rows)
    code, report = run(runner, "ingest", str(path), "--json")
    assert code == 0 and isinstance(report, dict) and report["stored"] == 6
    for lang, name in NAMES.items():
        code, profile = run(runner, "members", "show", f"{lang}@example.org", "--json")
        assert code == 0 and isinstance(profile, dict)
        assert profile["display_name"] == name
        assert profile["identities"][0]["name"] == name
    # the text output carries the names unchanged too
    text = runner.invoke(cli, ["members", "show", "he@example.org"]).stdout
    assert NAMES["he"] in text


def test_strict_exits_non_zero_but_keeps_the_good_rows(runner: CliRunner, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [record("1"), {"id": "2"}])
    result = runner.invoke(cli, ["ingest", str(path), "--strict"])
    assert result.exit_code == 2
    assert "line 2" in result.stderr or ":2:" in result.stderr
    _, status = run(runner, "status", "--json")
    assert isinstance(status, dict) and status["workspaces"][0]["activities"] == 1


def test_errors_tell_the_user_what_to_do(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["members", "show", "nobody@example.org"])
    assert result.exit_code == 4
    assert "no member" in result.stderr and "what to do:" in result.stderr
    code, data = run(runner, "members", "show", "nobody@example.org", "--json")
    assert code == 4 and isinstance(data, dict) and data["error"].startswith("no member")


def test_github_example_payloads_are_each_stored_or_skipped_with_a_reason(
    runner: CliRunner, shared_dir: Path
) -> None:
    folder = shared_dir / "data" / "github-webhooks"
    files = [p for p in folder.rglob("*.json")]
    code, report = run(runner, "ingest", str(folder), "--format", "github", "--json")
    assert code == 0 and isinstance(report, dict)
    assert report["read"] == len(files) and report["invalid"] == 0
    # every payload is accounted for: stored, a variant of one already stored, or skipped with a reason
    assert report["stored"] + report["duplicates"] + report["skipped"] == len(files)
    assert report["stored"] >= 10 and report["by_type"].keys() >= {"issue_opened", "comment", "star", "fork"}
    assert report["skipped"] == len(problems := report["problems"]) and all(p["reason"] for p in problems)
    assert any("ping" in p["reason"] for p in problems)
    code, again = run(runner, "ingest", str(folder), "--format", "github", "--json")
    assert isinstance(again, dict) and again["stored"] == 0
    assert again["duplicates"] == report["stored"] + report["duplicates"]


def test_demo_builds_a_community_and_summarises_it(runner: CliRunner) -> None:
    code, data = run(runner, "demo", "--members", "300", "--activities", "6000", "--json")
    assert code == 0 and isinstance(data, dict)
    status = data["status"]
    assert status["workspace"] == "demo" and status["activities"] == data["ingest"]["stored"] > 5000
    assert status["merges"] > 0 and status["organizations"] > 10
    assert {"github", "discourse", "slack"} <= set(status["activities_by_source"])
    code, again = run(runner, "demo", "--members", "300", "--activities", "6000", "--json")
    assert isinstance(again, dict) and again["ingest"]["stored"] == 0
    assert again["status"]["members"] == status["members"]
    # The demo ends with the sandbox CRM (test mode) holding the members with their scores; the
    # second run sends nothing: nothing changed.
    crm = data["crm"]
    assert (
        crm["contacts_in_crm"] == crm["sync"]["counts"]["created"] > 200
        and crm["sync"]["counts"]["failed"] == 0
    )
    assert crm["sample"] and all(c["flywheel_advocate_score"] for c in crm["sample"])
    # The one record the second run writes is the prospect the first run's referral brought in:
    # created after that run's scoring, scored by this one. Everyone else is left alone.
    prospect = [r for r in data["programs"]["referrals"]["captured"] if r["status"] == "pending"]
    assert len(prospect) == 1
    assert again["crm"]["sync"]["counts"]["unchanged"] == crm["contacts_in_crm"] - 1
    assert again["crm"]["sync"]["counts"]["updated"] == 1
    assert again["crm"]["sync"]["calls"].get("contacts.batch_upsert", 0) == 1
    assert [r["status"] for r in again["programs"]["referrals"]["captured"]] == ["held"] * 3


def test_review_a_suggestion_merge_and_undo_from_the_command_line(runner: CliRunner, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [
        record("g1", source="github", source_user_id="1", handle="mira"),
        record("d1", source="discourse", source_user_id="2", handle="Mira", email="mira@acme.io"),
    ])  # fmt: skip
    run(runner, "ingest", str(path), "--json")
    code, suggestions = run(runner, "members", "suggestions", "--json")
    assert code == 0 and isinstance(suggestions, list) and len(suggestions) == 1
    a, b = suggestions[0]["member_a"], suggestions[0]["member_b"]
    code, merged = run(runner, "members", "merge", str(a), str(b), "--json")
    assert code == 0 and isinstance(merged, dict)
    _, profile = run(runner, "members", "show", "mira@acme.io", "--json")
    assert isinstance(profile, dict) and {i["source"] for i in profile["identities"]} == {
        "github",
        "discourse",
    }
    code, undone = run(runner, "members", "unmerge", str(merged["merge_log_id"]), "--json")
    assert code == 0 and isinstance(undone, dict)
    _, profile = run(runner, "members", "show", "mira@acme.io", "--json")
    assert isinstance(profile, dict) and [i["source"] for i in profile["identities"]] == ["discourse"]
    _, suggestions = run(runner, "members", "suggestions", "--refresh", "--json")
    assert suggestions == []  # a person said they are two people: not proposed again


def test_names_that_look_like_markup_are_shown_as_written(runner: CliRunner, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [
        record("m1", name="Dana [ops] Levi", email="dana@example.org"),
        record("m2", name="Bob [/x]", email="bob@example.org"),
    ])  # fmt: skip
    run(runner, "ingest", str(path))
    for email, name in (("dana@example.org", "Dana [ops] Levi"), ("bob@example.org", "Bob [/x]")):
        result = runner.invoke(cli, ["members", "show", email])
        assert result.exit_code == 0 and name in result.stdout
