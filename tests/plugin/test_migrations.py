"""Alembic migrations: every step up and down, on SQLite and (with FLYWHEEL_TEST_DATABASE_URL) on
PostgreSQL, against a database of this file's own (never the session's migrated one).

The no-downtime policy for migrations newer than ``POLICY_FROM`` (0013), checked by
``test_new_migrations_are_additive``:

* Flywheel is upgraded while the previous version keeps serving (expand, deploy, contract). So a
  migration may only *add*: create tables, create indexes, add columns that are nullable or carry a
  server default, add constraints to the tables it creates itself, insert rows. It never drops,
  renames or alters what the running version reads and writes. Dropping the leftovers ("contract")
  is a later migration, once no running version uses them.
* A migration that cannot follow this says why in its module docstring, on a line of its own:
  ``Downtime: <reason>``. The release notes then say the upgrade needs the service stopped.
* On PostgreSQL, an index on a table that already exists is built ``CONCURRENTLY`` (a plain
  ``CREATE INDEX`` blocks every write to the table while it is built, minutes on a large
  ``activities`` table). Every existing table counts: how large a table is depends on the customer,
  not on the code. PostgreSQL refuses ``CREATE INDEX CONCURRENTLY`` inside a transaction, so the
  convention is::

      with op.get_context().autocommit_block():
          op.create_index("ix_t_col", "t", ["col"], postgresql_concurrently=True)

  (SQLite ignores ``postgresql_concurrently``.) Indexes on a table created by the same migration
  need nothing: the table is empty and nobody uses it yet.

The rule applies to new migrations only: 0001-0013 predate it (0003 rebuilt activity indexes, 0012
built a unique index in a transaction) and are grandfathered. The checker replays each migration's
``upgrade()`` in alembic's offline (``as_sql``) mode against the PostgreSQL dialect, recording every
operation; nothing touches a database.
"""

from __future__ import annotations

import io
import os
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from alembic import op
from alembic.autogenerate import compare_metadata
from alembic.operations import Operations, ops
from alembic.operations.base import AbstractOperations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

import plugin.db.models  # noqa: F401  (registers every table on Base.metadata)
from plugin.cli import cli
from plugin.db.base import Base
from plugin.db.engine import make_engine
from plugin.db.migrate import alembic_config, current_revision, downgrade, head_revision, upgrade
from plugin.db.models import (
    Activity,
    Consent,
    CrmConnection,
    CrmLink,
    Identity,
    Member,
    Organization,
    Panel,
    PanelMember,
    Referral,
    Workspace,
)
from plugin.settings import load_settings

POLICY_FROM = "0013"  # the newest migration written before the no-downtime policy
SECRET = "k0ZsJ3tIh3Xg7pQx3d8a2lYj0bV4cNnR9wT6yU1mE5o="
WHEN = datetime(2026, 11, 3, 9, 30, 15, 123456, tzinfo=UTC)


# --- a database of our own -----------------------------------------------------------------------


@pytest.fixture
def scratch_url(tmp_path: Path) -> Iterator[str]:
    """An empty database: a new SQLite file, or a new schema on the test PostgreSQL server."""
    pg = os.environ.get("FLYWHEEL_TEST_DATABASE_URL", "").strip()
    if not pg:
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    base = load_settings({"FLYWHEEL_DATABASE_URL": pg}).database_url
    schema = f"fw_mig_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def scratch(scratch_url: str) -> Iterator[Engine]:
    """An engine on the empty database, made as Flywheel makes it (SQLite pragmas included)."""
    engine = make_engine(load_settings({"FLYWHEEL_DATABASE_URL": scratch_url, "FLYWHEEL_SECRET_KEY": SECRET}))
    try:
        yield engine
    finally:
        engine.dispose()


def _script(engine: Engine) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(engine))


def _revisions(engine: Engine) -> list[str]:
    """Every revision, oldest first (the history is linear: one head, no merges)."""
    script = _script(engine)
    assert len(script.get_heads()) == 1, f"the migration history has several heads: {script.get_heads()}"
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def _schema(engine: Engine) -> dict[str, Any]:
    """The schema as SQLAlchemy reflects it: tables, columns (type, nullability, server default),
    primary keys, indexes (with partial-index conditions), unique constraints and foreign keys.
    Order-insensitive where the database's order means nothing (columns are compared by name: a
    SQLite batch rebuild may append a re-added column last)."""
    insp = inspect(engine)
    dialect = engine.dialect
    names = sorted(t for t in insp.get_table_names() if t != "alembic_version")
    if not names:
        return {}
    columns = insp.get_multi_columns(filter_names=names)
    pks = insp.get_multi_pk_constraint(filter_names=names)
    indexes = insp.get_multi_indexes(filter_names=names)
    uniques = insp.get_multi_unique_constraints(filter_names=names)
    fks = insp.get_multi_foreign_keys(filter_names=names)
    schema: dict[str, Any] = {}
    for name in names:
        key = (None, name)
        schema[name] = {
            "columns": sorted(
                (
                    c["name"],
                    c["type"].compile(dialect=dialect),
                    c["nullable"],
                    None if c.get("default") is None else str(c["default"]),
                )
                for c in columns[key]
            ),
            "pk": (pks[key].get("name"), tuple(pks[key]["constrained_columns"])),
            "indexes": sorted(
                (
                    i["name"] or "",
                    tuple(str(c) for c in i["column_names"]),
                    bool(i["unique"]),
                    tuple(sorted((k, str(v)) for k, v in i.get("dialect_options", {}).items())),
                )
                for i in indexes[key]
            ),
            "uniques": sorted((u["name"] or "", tuple(u["column_names"])) for u in uniques[key]),
            "fks": sorted(
                (
                    f["name"] or "",
                    tuple(f["constrained_columns"]),
                    f["referred_table"],
                    tuple(f["referred_columns"]),
                    tuple(sorted((f.get("options") or {}).items())),
                )
                for f in fks[key]
            ),
        }
    return schema


def _model_differences(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, Base.metadata))


# --- the walk: up, down, up again, one step at a time ---------------------------------------------


def test_every_migration_upgrades_and_downgrades_step_by_step(scratch: Engine) -> None:
    """Each downgrade() restores exactly the schema its revision started from; after the round
    trip the schema is the first upgrade's, and it is what the models declare. (About 2 s on
    either backend, so not marked slow.)"""
    revisions = _revisions(scratch)
    assert revisions[0] == "0001"
    assert current_revision(scratch) is None

    below: list[str | None] = [None, *revisions[:-1]]
    seen: dict[str | None, dict[str, Any]] = {None: _schema(scratch)}
    assert seen[None] == {}
    for revision, previous in zip(revisions, below, strict=True):
        upgrade(scratch, revision)
        assert current_revision(scratch) == revision
        seen[revision] = _schema(scratch)
        assert seen[revision] != seen[previous], f"{revision} changes nothing the reflection sees"
    head = revisions[-1]
    assert head == head_revision(scratch)

    for revision, previous in reversed(list(zip(revisions, below, strict=True))):
        downgrade(scratch, "-1")
        assert current_revision(scratch) == previous, f"downgrade of {revision} ended at the wrong revision"
        assert _schema(scratch) == seen[previous], (
            f"downgrade() of {revision} does not give back the schema of {previous or 'base'}"
        )
    assert inspect(scratch).get_table_names() == ["alembic_version"]

    for revision in revisions:
        upgrade(scratch, revision)
    assert current_revision(scratch) == head
    assert _schema(scratch) == seen[head], "up, down and up again: the schema differs from the first"

    # No difference ignored: types, nullability, server defaults, indexes, unique constraints and
    # foreign keys of the migrated database all match Base.metadata on both backends.
    assert _model_differences(scratch) == []


# --- data survives -------------------------------------------------------------------------------


def _insert(conn: sa.Connection, table: str, **values: Any) -> None:
    """Insert one row at an older revision: only the columns given (the models may have more), with
    the models' column types so datetimes, epoch micros and JSON are stored as Flywheel stores them."""
    model = Base.metadata.tables[table]
    lightweight = sa.table(table, *(sa.column(name, model.c[name].type) for name in values))
    conn.execute(lightweight.insert().values(**values))


def test_rows_written_by_an_older_schema_survive_the_upgrade_and_read_through_the_models(
    scratch: Engine,
) -> None:
    """Rows go in at 0002, 0004 and 0010 and then live through the later migrations, including the
    ones that add columns (0005, 0006, 0011), rebuild activity indexes (0003) and add a unique
    partial index (0012)."""
    upgrade(scratch, "0002")
    with scratch.begin() as conn:
        _insert(conn, "workspaces", id=1, slug="acme", name="Acme", created_at=WHEN)
        _insert(
            conn, "organizations", id=1, workspace_id=1, name="Initech", domain="initech.example",
            size=120, created_at=WHEN, updated_at=WHEN,
        )  # fmt: skip
        _insert(
            conn, "members", id=1, workspace_id=1, display_name="Ada Lovelace",
            primary_email="ada@initech.example", organization_id=1, created_at=WHEN, updated_at=WHEN,
        )  # fmt: skip
        _insert(
            conn, "identities", id=1, workspace_id=1, member_id=1, source="github",
            source_user_id="gh-1", handle="ada", email="ada@initech.example", verified=True,
            created_at=WHEN,
        )  # fmt: skip
        _insert(
            conn, "activities", id=1, workspace_id=1, source="github", source_activity_id="pr-7",
            type="pull_request", occurred_at=WHEN, ingested_at=WHEN, member_id=1, identity_id=1,
            title="Fix the loom", properties={"labels": ["bug"], "merged": True}, sentiment=0.5,
        )  # fmt: skip
        _insert(
            conn, "consents", id=1, workspace_id=1, member_id=1, purpose="research", granted=True,
            recorded_at=WHEN, source="signup form",
        )  # fmt: skip
    upgrade(scratch, "0004")
    with scratch.begin() as conn:
        _insert(
            conn, "crm_connections", id=1, workspace_id=1, kind="hubspot", credentials_encrypted="x",
            settings={"owner": "7"}, created_at=WHEN,
        )  # fmt: skip
        _insert(
            conn, "crm_links", connection_id=1, member_id=1, crm_object="contact", crm_id="501",
            failures=0,
        )  # fmt: skip
    upgrade(scratch, "0010")
    with scratch.begin() as conn:
        _insert(
            conn, "panels", id=1, workspace_id=1, name="Q4 research", spec={"size": 8},
            status="drawn", created_at=WHEN,
        )  # fmt: skip
        _insert(
            conn, "panel_members", panel_id=1, member_id=1, stratum="eu", role="selected", rank=1,
            status="selected", updated_at=WHEN,
        )  # fmt: skip
        _insert(
            conn, "referral_invites", id=1, workspace_id=1, member_id=1, code="ADA-1",
            campaign="spring", created_at=WHEN,
        )  # fmt: skip
        _insert(
            conn, "referrals", id=1, workspace_id=1, invite_id=1, member_id=1,
            prospect_name="Grace", prospect_email="grace@example.com", status="pending",
            created_at=WHEN,
        )  # fmt: skip

    upgrade(scratch)
    assert current_revision(scratch) == head_revision(scratch)

    with Session(scratch) as session:
        workspace = session.get(Workspace, 1)
        assert workspace is not None and (workspace.slug, workspace.created_at) == ("acme", WHEN)
        org = session.get(Organization, 1)
        assert org is not None and (org.domain, org.size) == ("initech.example", 120)
        member = session.get(Member, 1)
        assert member is not None
        assert (member.display_name, member.primary_email, member.organization_id) == (
            "Ada Lovelace", "ada@initech.example", 1,
        )  # fmt: skip
        identity = session.get(Identity, 1)
        assert identity is not None and (identity.handle, identity.verified) == ("ada", True)
        activity = session.get(Activity, 1)
        assert activity is not None
        assert (activity.type, activity.occurred_at, activity.properties, activity.sentiment) == (
            "pull_request", WHEN, {"labels": ["bug"], "merged": True}, 0.5,
        )  # fmt: skip
        consent = session.scalars(sa.select(Consent)).one()
        assert (consent.purpose, consent.granted, consent.recorded_at) == ("research", True, WHEN)
        connection = session.get(CrmConnection, 1)
        assert connection is not None
        assert (connection.settings, connection.events_noted) == ({"owner": "7"}, 0)  # 0005's default
        link = session.get(CrmLink, (1, 1))
        assert link is not None and (link.crm_id, link.company_crm_id) == ("501", None)  # 0006's column
        panel = session.get(Panel, 1)
        assert panel is not None and panel.spec == {"size": 8}
        seat = session.get(PanelMember, (1, 1))
        assert seat is not None
        assert (seat.status, seat.invited_at, seat.deadline, seat.reminders) == ("selected", None, None, 0)
        referral = session.get(Referral, 1)
        assert referral is not None and (referral.prospect_email, referral.status) == (
            "grace@example.com", "pending",
        )  # fmt: skip

        # The rows are also writable through the models at head (the new columns included).
        seat.reminders = 1
        seat.invited_at = WHEN
        session.commit()
    with Session(scratch) as session:
        seat = session.get(PanelMember, (1, 1))
        assert seat is not None and (seat.reminders, seat.invited_at) == (1, WHEN)


# --- the no-downtime policy ----------------------------------------------------------------------

DOWNTIME = re.compile(r"^\s*Downtime:\s*\S", re.MULTILINE)


def _declares_downtime(doc: str | None) -> bool:
    return bool(doc and DOWNTIME.search(doc))


@contextmanager
def _recorded(operations: list[ops.MigrateOperation], in_autocommit: list[bool]) -> Iterator[None]:
    """Record every operation invoked (batch operations included) and whether it ran inside
    ``autocommit_block()``."""
    original = AbstractOperations.invoke
    depth = [0]

    def invoke(self: AbstractOperations, operation: ops.MigrateOperation) -> Any:
        operations.append(operation)
        in_autocommit.append(depth[0] > 0)
        return original(self, operation)

    original_block = MigrationContext.autocommit_block

    @contextmanager
    def autocommit_block(self: MigrationContext) -> Iterator[None]:
        depth[0] += 1
        try:
            with original_block(self):
                yield
        finally:
            depth[0] -= 1

    AbstractOperations.invoke = invoke  # type: ignore[assignment,method-assign]
    MigrationContext.autocommit_block = autocommit_block  # type: ignore[assignment,method-assign]
    try:
        yield
    finally:
        AbstractOperations.invoke = original  # type: ignore[method-assign]
        MigrationContext.autocommit_block = original_block  # type: ignore[method-assign]


def downtime_problems(upgrade_fn: Callable[[], None]) -> list[str]:
    """What in ``upgrade_fn`` would break the previous Flywheel version running during the upgrade
    (empty: additive). Replays it offline against PostgreSQL; the SQL is discarded."""
    context = MigrationContext.configure(
        dialect_name="postgresql",
        opts={"as_sql": True, "output_buffer": io.StringIO(), "target_metadata": Base.metadata},
    )
    operations: list[ops.MigrateOperation] = []
    in_autocommit: list[bool] = []
    with _recorded(operations, in_autocommit), Operations.context(context):
        upgrade_fn()

    created: set[str] = set()
    problems: list[str] = []
    for operation, autocommit in zip(operations, in_autocommit, strict=True):
        if isinstance(operation, ops.CreateTableOp):
            created.add(operation.table_name)
        elif isinstance(operation, ops.CreateIndexOp):
            if operation.table_name in created:
                continue
            if not operation.kw.get("postgresql_concurrently"):
                problems.append(
                    f"index {operation.index_name} on existing table {operation.table_name} is not "
                    "built CONCURRENTLY (postgresql_concurrently=True)"
                )
            elif not autocommit:
                problems.append(
                    f"index {operation.index_name} is built CONCURRENTLY outside "
                    "op.get_context().autocommit_block() (PostgreSQL refuses it in a transaction)"
                )
        elif isinstance(operation, ops.AddColumnOp):
            column = operation.column
            if column.primary_key or (not column.nullable and column.server_default is None):
                problems.append(
                    f"column {operation.table_name}.{column.name} is NOT NULL without a server default "
                    "(the running version's inserts would fail)"
                )
        elif isinstance(operation, ops.AddConstraintOp):
            table = getattr(operation, "table_name", None) or getattr(operation, "source_table", None)
            if table not in created:
                problems.append(f"constraint added to existing table {table}: {type(operation).__name__}")
        elif isinstance(operation, ops.BulkInsertOp | ops.CreateTableCommentOp | ops.DropTableCommentOp):
            continue  # rows added, or a comment: the running version is unaffected
        elif isinstance(operation, ops.ExecuteSQLOp):
            sql = str(operation.sqltext).strip()
            if not re.match(r"(?is)^(insert\s|create\s+(unique\s+)?index\s+concurrently\s)", sql):
                problems.append(f"raw SQL that is not known to be additive: {sql[:80]!r}")
        else:
            names = ("index_name", "constraint_name", "table_name", "column_name")
            what = " ".join(str(getattr(operation, n)) for n in names if getattr(operation, n, None))
            problems.append(f"{type(operation).__name__} {what}".strip())
    return problems


def _newer_than_policy(engine: Engine) -> list[str]:
    script = _script(engine)
    assert script.get_revision(POLICY_FROM) is not None
    newer = [rev.revision for rev in script.iterate_revisions("heads", POLICY_FROM, inclusive=False)]
    return list(reversed(newer))


def test_new_migrations_are_additive(scratch: Engine) -> None:
    """Migrations after 0013 only add (see the module docstring), or declare ``Downtime: <reason>``."""
    script = _script(scratch)
    failures: dict[str, list[str]] = {}
    for revision in _newer_than_policy(scratch):
        module = script.get_revision(revision).module  # type: ignore[union-attr]
        if _declares_downtime(module.__doc__):
            continue
        problems = downtime_problems(module.upgrade)
        if problems:
            failures[revision] = problems
    assert not failures, (
        "migrations that would break the running version during an upgrade; make them additive "
        "(expand now, contract in a later release) or add a line 'Downtime: <reason>' to the "
        f"migration's docstring: {failures}"
    )


def test_the_policy_would_have_caught_the_grandfathered_migrations(scratch: Engine) -> None:
    """The checker on real history: 0003 dropped and rebuilt indexes, 0012 built an index on an
    existing table in a transaction; the table-creating ones are additive."""
    script = _script(scratch)

    def problems(revision: str) -> list[str]:
        return downtime_problems(script.get_revision(revision).module.upgrade)  # type: ignore[union-attr]

    assert any("DropIndexOp ix_activities_member_time" in p for p in problems("0003"))
    assert problems("0012") == [
        "index uq_referrals_open_prospect on existing table referrals is not built CONCURRENTLY "
        "(postgresql_concurrently=True)"
    ]
    for additive in ("0001", "0002", "0004", "0007", "0008", "0009", "0010", "0011", "0013"):
        assert problems(additive) == [], additive
    assert problems("0005") == []  # NOT NULL, but with a server default


def _good_new_table() -> None:
    op.create_table("jobs", sa.Column("id", sa.Integer(), primary_key=True), sa.Column("n", sa.Integer()))
    op.create_index("ix_jobs_n", "jobs", ["n"])
    with op.batch_alter_table("jobs") as batch:
        batch.create_index("ix_jobs_id_n", ["id", "n"])
    op.create_foreign_key("fk_jobs_n_workspaces", "jobs", "workspaces", ["n"], ["id"])
    op.bulk_insert(sa.table("jobs", sa.column("n", sa.Integer())), [{"n": 1}])


def _good_columns() -> None:
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("nickname", sa.String(40), nullable=True))
    op.add_column("members", sa.Column("karma", sa.Integer(), server_default="0", nullable=False))
    op.execute("INSERT INTO workspaces (slug, name, created_at) VALUES ('x', 'x', now())")


def _good_concurrent_index() -> None:
    with op.get_context().autocommit_block():
        op.create_index("ix_activities_url", "activities", ["url"], postgresql_concurrently=True)


BAD: list[tuple[Callable[[], None], str]] = [
    (lambda: op.drop_column("members", "title"), "DropColumnOp members title"),
    (lambda: op.drop_table("consents"), "DropTableOp consents"),
    (
        lambda: op.drop_index("ix_members_workspace_email", table_name="members"),
        "DropIndexOp ix_members_workspace_email members",
    ),
    (lambda: op.rename_table("members", "people"), "RenameTableOp members"),
    (lambda: op.alter_column("members", "title", new_column_name="job_title"), "AlterColumnOp members"),
    (lambda: op.alter_column("members", "title", nullable=False), "AlterColumnOp members"),
    (lambda: op.alter_column("members", "locale", type_=sa.String(10)), "AlterColumnOp members"),
    (
        lambda: op.add_column("members", sa.Column("score", sa.Integer(), nullable=False)),
        "members.score is NOT NULL without a server default",
    ),
    (lambda: op.create_index("ix_activities_url", "activities", ["url"]), "is not built CONCURRENTLY"),
    (
        lambda: op.create_index("ix_activities_url", "activities", ["url"], postgresql_concurrently=True),
        "outside op.get_context().autocommit_block()",
    ),
    (
        lambda: op.create_unique_constraint("uq_members_title", "members", ["title"]),
        "constraint added to existing table members",
    ),
    (
        lambda: op.drop_constraint("uq_users_email", "users", type_="unique"),
        "DropConstraintOp uq_users_email",
    ),
    (lambda: op.execute("ALTER TABLE members DROP COLUMN title"), "raw SQL"),
]


@pytest.mark.parametrize(("upgrade_fn", "expected"), BAD, ids=[e for _, e in BAD])
def test_the_checker_flags_what_breaks_the_running_version(
    upgrade_fn: Callable[[], None], expected: str
) -> None:
    problems = downtime_problems(upgrade_fn)
    assert len(problems) == 1 and expected in problems[0], problems


@pytest.mark.parametrize("upgrade_fn", [_good_new_table, _good_columns, _good_concurrent_index])
def test_the_checker_lets_additive_migrations_through(upgrade_fn: Callable[[], None]) -> None:
    assert downtime_problems(upgrade_fn) == []


def test_a_downtime_line_in_the_docstring_is_the_only_way_out() -> None:
    assert _declares_downtime('"""split names\n\nDowntime: rewrites members (minutes on 10M rows)\n"""')
    assert not _declares_downtime("no downtime needed: additive")
    assert not _declares_downtime("Downtime:   \n")  # a reason is required
    assert not _declares_downtime(None)


CONCURRENT_INDEX_MIGRATIONS = {
    "c1_table.py": """\"\"\"a table\"\"\"
import sqlalchemy as sa
from alembic import op

revision = "c1"
down_revision = None


def upgrade() -> None:
    op.create_table("t", sa.Column("id", sa.Integer(), primary_key=True), sa.Column("n", sa.Integer()))


def downgrade() -> None:
    op.drop_table("t")
""",
    "c2_index.py": """\"\"\"an index on the existing table, built as the policy asks\"\"\"
from alembic import op

revision = "c2"
down_revision = "c1"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index("ix_t_n", "t", ["n"], postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("ix_t_n", table_name="t", postgresql_concurrently=True)
""",
}


def test_the_concurrent_index_convention_runs_through_flywheel_db_upgrade(
    scratch: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import plugin.db.migrate as migrate

    scripts = tmp_path / "migrations"
    (scripts / "versions").mkdir(parents=True)
    (scripts / "env.py").write_text((migrate.MIGRATIONS / "env.py").read_text())
    for name, source in CONCURRENT_INDEX_MIGRATIONS.items():
        (scripts / "versions" / name).write_text(source)
    monkeypatch.setattr(migrate, "MIGRATIONS", scripts)
    upgrade(scratch)
    assert [i["name"] for i in inspect(scratch).get_indexes("t")] == ["ix_t_n"]
    downgrade(scratch, "c1")
    assert inspect(scratch).get_indexes("t") == []


# --- flywheel db downgrade -------------------------------------------------------------------------


def test_cli_db_downgrade_asks_first_then_reverts(
    scratch_url: str, scratch: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FLYWHEEL_DATABASE_URL", scratch_url)
    monkeypatch.setenv("FLYWHEEL_SECRET_KEY", SECRET)
    monkeypatch.setenv("FLYWHEEL_SECRET_KEY_FILE", str(tmp_path / "secret"))
    runner = CliRunner()
    upgrade(scratch)
    revisions = _revisions(scratch)
    head, previous = revisions[-1], revisions[-2]

    answered_no = runner.invoke(cli, ["db", "downgrade", "-1"], input="n\n")
    assert answered_no.exit_code == 1, answered_no.output
    assert f"  {head}  " in answered_no.output and "dropped with its data" in answered_no.output
    assert current_revision(scratch) == head

    result = runner.invoke(cli, ["db", "downgrade", "-1", "--yes", "--json"])
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout) == {"from": head, "to": previous, "reverted": [head]}
    assert current_revision(scratch) == previous

    answered_yes = runner.invoke(cli, ["db", "downgrade", "0011"], input="y\n")
    assert answered_yes.exit_code == 0, answered_yes.output
    assert f"Schema at 0011 (was {previous})" in answered_yes.output
    assert current_revision(scratch) == "0011"

    for bad in ("nonesuch", previous):  # unknown; above the database's revision
        refused = runner.invoke(cli, ["db", "downgrade", bad, "--yes", "--json"])
        assert refused.exit_code == 2, refused.output
        assert "error" in orjson.loads(refused.stdout)
    assert current_revision(scratch) == "0011"

    same = runner.invoke(cli, ["db", "downgrade", "0011", "--json"])  # nothing to revert: no question
    assert same.exit_code == 0 and orjson.loads(same.stdout)["reverted"] == []

    back = runner.invoke(cli, ["db", "upgrade", "--json"])
    assert back.exit_code == 0 and orjson.loads(back.stdout) == {"from": "0011", "to": head}

    to_base = runner.invoke(cli, ["db", "downgrade", "base", "--yes"])
    assert to_base.exit_code == 0 and "Schema at empty (base)" in to_base.output
    assert current_revision(scratch) is None


def test_the_upgrade_to_0016_fills_the_value_of_existing_surveys_reviews_and_purchases(
    scratch: Engine,
) -> None:
    upgrade(scratch, "0015")
    with scratch.begin() as conn:
        _insert(conn, "workspaces", id=1, slug="acme", name="Acme", created_at=WHEN)
        _insert(conn, "members", id=1, workspace_id=1, created_at=WHEN, updated_at=WHEN)
        _insert(
            conn, "identities", id=1, workspace_id=1, member_id=1, source="csv", source_user_id="u1",
            verified=False, created_at=WHEN,
        )  # fmt: skip
        rows = {
            "s": ("survey_response", {"nps": 8}),
            "r": ("review", {"rating": 3.5}),
            "p": ("purchase", {"amount": "USD 49"}),  # not a number: stays without one
            "x": ("post", {"nps": 7}),  # not a type that carries one
        }
        for i, (sid, (kind, props)) in enumerate(rows.items(), start=1):
            _insert(
                conn, "activities", id=i, workspace_id=1, source="csv", source_activity_id=sid, type=kind,
                occurred_at=WHEN, ingested_at=WHEN, member_id=1, identity_id=1, properties=props,
            )  # fmt: skip
    upgrade(scratch, "0016")
    with scratch.connect() as conn:
        got = dict(conn.execute(sa.text("SELECT source_activity_id, value FROM activities")).all())
    assert got == {"s": 8.0, "r": 3.5, "p": None, "x": None}
