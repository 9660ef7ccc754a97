"""Test database: a temporary SQLite file, or, with FLYWHEEL_TEST_DATABASE_URL set, a throw-away
schema on that PostgreSQL server (created for this run, dropped after it).

Tables are emptied after each test that used the database, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from plugin.db.base import Base
from plugin.db.engine import make_engine
from plugin.db.migrate import upgrade
from plugin.settings import Settings, load_settings

pytest_plugins = ["tests.fakes.hubspot", "tests.fakes.salesforce", "pytester"]  # CRM fakes; pytester

SHARED = Path(__file__).resolve().parents[2] / "shared"
if not SHARED.exists():  # CI clones main with shared/ beside it; a developer's checkout may differ
    SHARED = Path(os.environ.get("FLYWHEEL_SHARED_DIR", SHARED))


def _postgres_url() -> str | None:
    url = os.environ.get("FLYWHEEL_TEST_DATABASE_URL", "").strip()
    return url or None


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pg = _postgres_url()
    if pg is None:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'flywheel-test.db'}"
        return
    base = load_settings({"FLYWHEEL_DATABASE_URL": pg}).database_url
    schema = f"fw_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, pool_pre_ping=True)  # the restart fault test restarts the server
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        pytest.exit(f"FLYWHEEL_TEST_DATABASE_URL is set but PostgreSQL is not usable: {exc}", returncode=3)
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    key_file = tmp_path_factory.mktemp("keys") / "secret"
    return load_settings(
        {
            "FLYWHEEL_DATABASE_URL": database_url,
            "FLYWHEEL_SECRET_KEY_FILE": str(key_file),
            "FLYWHEEL_SECRET_KEY": "k0ZsJ3tIh3Xg7pQx3d8a2lYj0bV4cNnR9wT6yU1mE5o=",
        }
    )


@pytest.fixture(scope="session")
def _migrated(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(_migrated: Engine) -> Iterator[Engine]:
    yield _migrated
    with _migrated.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())


@pytest.fixture
def cli_env(settings: Settings, engine: Engine, tmp_path: Path) -> dict[str, str]:
    """Environment for running the CLI against the test database."""
    env = {
        "FLYWHEEL_DATABASE_URL": settings.database_url,
        "FLYWHEEL_SECRET_KEY": settings.secret_key or "",
        "FLYWHEEL_SECRET_KEY_FILE": str(tmp_path / "secret"),
    }
    return env


@pytest.fixture
def runner(cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for key, value in cli_env.items():
        monkeypatch.setenv(key, value)
    return CliRunner()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "data").exists():
        message = f"shared data not found at {SHARED}; set FLYWHEEL_SHARED_DIR to the shared/ folder"
        if os.environ.get("FLYWHEEL_REQUIRE_SHARED"):
            pytest.fail(message)
        pytest.skip(message)
    return SHARED


@pytest.fixture
def workspace_id(engine: Engine) -> int:
    from sqlalchemy.orm import Session

    from plugin.services.workspaces import ensure_workspace

    with Session(engine) as session:
        workspace, _ = ensure_workspace(session, "default", "Default workspace")
        session.commit()
        return workspace.id


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashes() -> None:
    """Argon2id with the smallest cost in tests: hashing is what the library does, not what the
    tests check, and the production cost (a fifth of a second a hash) made every dashboard test
    that signs people in wait for it."""
    from argon2 import PasswordHasher

    import plugin.services.users as users

    users.HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
