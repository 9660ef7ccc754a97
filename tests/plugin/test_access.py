"""Who may use Flywheel: workspaces, API tokens and dashboard users from the CLI, and what every
response carries (security headers, rate limits, problem details)."""

from __future__ import annotations

import dataclasses
import json

from click.testing import CliRunner
from sqlalchemy import Engine, select

from plugin.cli import cli
from plugin.db.models import ApiToken, User
from plugin.settings import Settings
from plugin.web.app import create_app


def _json(runner: CliRunner, *args: str, env: dict[str, str] | None = None) -> dict:
    result = runner.invoke(cli, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_token_made_on_the_command_line_works_once_shown_and_stops_when_revoked(
    runner: CliRunner, engine: Engine, settings: Settings
) -> None:
    ws = _json(runner, "workspaces", "create", "Acme Community")
    assert ws["slug"] == "acme-community" and ws["created"]
    made = _json(
        runner, "tokens", "create", "--workspace", "acme-community", "--role", "sales", "--expires", "30"
    )
    with engine.connect() as conn:
        stored = conn.execute(select(ApiToken.token_hash, ApiToken.prefix)).one()
    assert made["token"] not in stored and made["token"].startswith(stored.prefix)  # only a hash at rest
    listed = _json(runner, "tokens", "list", "--workspace", "acme-community")
    assert made["token"] not in json.dumps(listed) and listed[0]["expires_at"]
    client = create_app(settings, engine).test_client()
    headers = {"Authorization": f"Bearer {made['token']}"}
    assert client.get("/api/v1/members", headers=headers).status_code == 200
    assert _json(runner, "tokens", "revoke", str(made["id"]))["revoked"]
    refused = client.get("/api/v1/members", headers=headers)
    assert refused.status_code == 401 and refused.headers["Content-Type"] == "application/problem+json"
    unknown = runner.invoke(cli, ["tokens", "create", "--workspace", "nope", "--role", "sales"])
    assert unknown.exit_code != 0 and "flywheel init --workspace" in unknown.output


def test_a_dashboard_user_gets_a_hash_never_the_password(runner: CliRunner, engine: Engine) -> None:
    _json(runner, "workspaces", "create", "Research", "--slug", "research")
    env = {"FW_PW": "correct horse battery staple"}
    args = [
        "users",
        "create",
        "Ray@Example.ORG",
        "-w",
        "research",
        "-r",
        "researcher",
        "--password-env",
        "FW_PW",
    ]
    user = _json(runner, *args, env=env)
    assert user["email"] == "ray@example.org"
    with engine.connect() as conn:
        stored = conn.execute(select(User.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and env["FW_PW"] not in stored
    short = runner.invoke(
        cli,
        ["users", "create", "s@example.org", "-w", "research", "-r", "sales", "--password-env", "P"],
        env={"P": "short"},
    )
    assert short.exit_code == 2 and "at least 12 characters" in short.output
    again = runner.invoke(
        cli,
        ["users", "create", "ray@example.org", "-w", "research", "-r", "sales", "--password-env", "FW_PW"],
        env=env,
    )
    assert again.exit_code == 2 and "exists" in again.output


def test_responses_carry_security_headers_and_the_api_is_rate_limited_per_token(
    engine: Engine, settings: Settings, runner: CliRunner
) -> None:
    _json(runner, "workspaces", "create", "Limits", "--slug", "limits")
    tokens = [_json(runner, "tokens", "create", "-w", "limits", "-r", "sales")["token"] for _ in range(2)]
    app = create_app(dataclasses.replace(settings, api_rate_limit="3 per minute"), engine)
    client = app.test_client()
    first, second = ({"Authorization": f"Bearer {t}"} for t in tokens)
    answers = [client.get("/api/v1/members", headers=first) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert (
        answers[-1].headers["Content-Type"] == "application/problem+json"
        and "Retry-After" in answers[-1].headers
    )
    assert client.get("/api/v1/activities", headers=first).status_code == 429  # one budget, every route
    padded = {"Authorization": f"Bearer {tokens[0]}   "}
    assert client.get("/api/v1/members", headers=padded).status_code == 429  # the same token, padded
    other_token = client.get("/api/v1/members", headers=second)
    assert other_token.status_code == 200  # another token has its own budget
    page = client.get("/api/docs")
    assert (
        page.headers["X-Content-Type-Options"] == "nosniff"
        and "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    )
    assert client.get("/api/openapi.json").headers["X-Frame-Options"] == "DENY"


def test_the_dashboard_command_links_in_once_and_the_link_cannot_be_reused(
    engine: Engine, settings: Settings, workspace_id: int
) -> None:
    from datetime import timedelta

    from plugin.db.base import utcnow
    from plugin.services.sign_in_links import make_link_token, operator

    with engine.begin() as conn:
        user = operator(conn, workspace_id, "default")
        assert operator(conn, workspace_id, "default") == user  # the same owner next time
    client = create_app(settings, engine).test_client()
    token = make_link_token(settings, user, utcnow())
    first = client.get(f"/dashboard/link/{token}")
    assert first.status_code == 302 and first.headers["Location"].endswith("/dashboard/")
    assert client.get("/dashboard/").status_code == 200  # signed in
    other = create_app(settings, engine).test_client()
    spent = other.get(f"/dashboard/link/{token}")
    assert "/dashboard/sign-in" in spent.headers["Location"]
    assert other.get("/dashboard/").status_code == 302  # not signed in
    stale = make_link_token(settings, user, utcnow() - timedelta(minutes=11))
    assert "/dashboard/sign-in" in other.get(f"/dashboard/link/{stale}").headers["Location"]
    assert "/dashboard/sign-in" in other.get(f"/dashboard/link/{token[:-2]}xx").headers["Location"]
