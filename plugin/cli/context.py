"""What every command shares: settings, the engine, the workspace, and output in text or JSON."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property, wraps
from typing import Any, ParamSpec, TypeVar

import click
import orjson
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from plugin.db.engine import make_engine, make_sessionmaker
from plugin.db.migrate import current_revision, head_revision, upgrade
from plugin.db.models import Workspace
from plugin.errors import ConfigError, FlywheelError, ValidationFailed
from plugin.logs import configure_logging
from plugin.services.workspaces import ensure_workspace, get_workspace
from plugin.settings import Settings, load_settings

P = ParamSpec("P")
R = TypeVar("R")


class AppContext:
    def __init__(self) -> None:
        self.out = Console(soft_wrap=True)
        self.err = Console(stderr=True)

    @cached_property
    def settings(self) -> Settings:
        settings = load_settings()
        configure_logging(settings)
        return settings

    @cached_property
    def engine(self) -> Engine:
        engine = make_engine(self.settings)
        try:
            current = current_revision(engine)
        except OperationalError as exc:
            raise ConfigError(
                f"cannot open the database {self.settings.redacted_database_url()}",
                hint="check FLYWHEEL_DATABASE_URL and that the server is running",
                detail=str(exc.orig),
            ) from None
        if current != head_revision(engine):
            if self.settings.is_sqlite:
                upgrade(engine)  # the embedded default sets itself up: no step for a newcomer
            else:
                raise ConfigError(
                    "the database schema is not up to date",
                    hint="run `flywheel db upgrade` (back the database up first)",
                )
        return engine

    def session(self) -> Session:
        return make_sessionmaker(self.engine)()

    def workspace(self, session: Session, slug: str | None) -> Workspace:
        slug = slug or self.settings.default_workspace
        if slug == self.settings.default_workspace:
            workspace, created = ensure_workspace(session, slug, "Default workspace")
            if created:
                session.commit()
            return workspace
        return get_workspace(session, slug)

    def emit_json(self, data: Any) -> None:
        sys.stdout.write(
            orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n"
        )

    @contextmanager
    def progress(self, description: str, *, in_bytes: bool = False) -> Iterator[Callable[[int, int], None]]:
        """A progress bar on stderr (so ``--json`` output stays clean); yields update(done, total)."""
        columns: list[Any] = [TextColumn("[bold]{task.description}"), BarColumn()]
        columns += [DownloadColumn()] if in_bytes else [TextColumn("{task.completed:,}/{task.total}")]
        columns.append(TimeRemainingColumn())
        with Progress(*columns, console=self.err, transient=True) as bar:
            task = bar.add_task(description, total=None)

            def update(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            yield update


pass_app = click.make_pass_decorator(AppContext, ensure=True)


def stop_on_signals() -> threading.Event:
    """An event set by Ctrl-C or SIGTERM: long-running commands finish what is in flight, then stop."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn Flywheel errors into a clear message (or JSON with --json) and the error's exit code."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except FlywheelError as exc:
            if kwargs.get("as_json"):
                payload = {"error": exc.user_message, "hint": exc.hint}
                fields = getattr(exc, "fields", None)
                if fields:
                    payload["fields"] = fields
                sys.stdout.write(orjson.dumps(payload).decode() + "\n")
            else:
                click.echo(f"error: {exc.user_message}", err=True)
                for name, problem in (getattr(exc, "fields", None) or {}).items():
                    click.echo(f"  {name}: {problem}", err=True)
                if exc.hint:
                    click.echo(f"what to do: {exc.hint}", err=True)
            raise SystemExit(exc.exit_code) from None

    return wrapper


def secret_input(
    env_var: str | None, field: str, prompt: str, *, confirm: bool = False, hint: str = ""
) -> str:
    """A secret from the environment variable a flag names, else asked for on the terminal (hidden,
    on stderr so --json output stays clean); never a plain argument, which stays in shell history."""
    if env_var:
        value = os.environ.get(env_var, "")
        if not value:
            raise ValidationFailed(
                f"the environment variable {env_var} is empty or not set",
                fields={field: "not set"},
                hint=f"export {env_var}=...{f' ({hint})' if hint else ''}, then run this again",
            )
        return value
    answer: str = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True)
    return answer


json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
workspace_option = click.option(
    "--workspace", "-w", default=None, help="Workspace slug (default: FLYWHEEL_WORKSPACE or 'default')."
)
