"""The ``flywheel`` command."""

from __future__ import annotations

import click

from plugin import __version__
from plugin.cli.access import tokens, users, workspaces
from plugin.cli.admin import db, hooks, init, serve, status
from plugin.cli.crm import crm
from plugin.cli.dashboard import dashboard
from plugin.cli.demo import demo
from plugin.cli.ingest import ingest
from plugin.cli.members import members
from plugin.cli.panels import panels
from plugin.cli.referrals import referrals
from plugin.cli.rewards import rewards
from plugin.cli.score import evaluate, score, scores
from plugin.cli.webhooks import webhooks
from plugin.cli.worker import beat, schedule_, worker


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="flywheel")
def cli() -> None:
    """Flywheel: your community's activity, resolved into people and organizations, for your CRM.

    Settings come from FLYWHEEL_* environment variables; with none set, everything lives in
    ./flywheel.db (SQLite).
    """


for command in (
    init,
    db,
    status,
    ingest,
    members,
    score,
    scores,
    evaluate,
    crm,
    demo,
    hooks,
    serve,
    dashboard,
    webhooks,
    rewards,
    referrals,
    panels,
    workspaces,
    tokens,
    users,
    worker,
    beat,
    schedule_,
):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="flywheel")
