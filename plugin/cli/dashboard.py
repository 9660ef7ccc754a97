"""``flywheel dashboard``: open the dashboard on this machine, signed in, in one command."""

from __future__ import annotations

import dataclasses
import webbrowser

import click
from werkzeug.serving import run_simple

from plugin.cli.context import AppContext, handle_errors, json_option, pass_app, workspace_option
from plugin.db.base import utcnow
from plugin.services.sign_in_links import VALID_FOR, make_link_token, operator


@click.command()
@workspace_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--no-browser", is_flag=True, help="Only print the link; do not open a browser.")
@json_option
@pass_app
@handle_errors
def dashboard(
    app: AppContext, workspace: str | None, host: str, port: int, no_browser: bool, as_json: bool
) -> None:
    """Serve the dashboard here and open it with a one-time sign-in link (valid 10 minutes).

    For a team, run `flywheel serve` behind HTTPS and create sign-ins with `flywheel users create`."""
    from plugin.web.app import create_app

    with app.session() as session:
        ws = app.workspace(session, workspace)
        user_id = operator(session.connection(), ws.id, ws.slug)
        session.commit()
    token = make_link_token(app.settings, user_id, utcnow())
    url = f"http://{host}:{port}/dashboard/link/{token}"
    minutes = int(VALID_FOR.total_seconds() // 60)
    if as_json:
        app.emit_json({"workspace": ws.slug, "url": url, "valid_minutes": minutes})
    else:
        app.out.print(f"Dashboard of [bold]{ws.slug}[/bold]: {url}", highlight=False)
        app.out.print(f"(a one-time sign-in link, valid {minutes} minutes; Ctrl+C stops the server)")
    # This server speaks plain http on this machine: a Secure-only cookie would never come back.
    web = create_app(dataclasses.replace(app.settings, cookie_secure=False), app.engine)
    if not no_browser:
        webbrowser.open(url)
    run_simple(host, port, web, threaded=True, use_reloader=False, use_debugger=False)
