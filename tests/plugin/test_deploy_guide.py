"""docs/deploy.md, followed as written: its steps start web, worker and beat (honcho, the Procfile)
against this machine's PostgreSQL and Redis, and run the demo pipeline through them: a signed GitHub
hook into the web process, scoring and a CRM sync run by Celery workers from the beat's schedule.

The only changes to the guide's text: its install step is skipped (this environment has Flywheel
installed), and the database name, the Redis database numbers and the port become scratch ones, so
a run never touches a real install on the same machine."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest
import yaml

from tests.plugin.celery_procs import broker_or_skip

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "deploy.md"
SECTION = "## On one machine, without containers"


def steps(text: str) -> list[tuple[str | None, str]]:
    """The (marker, bash) blocks of the guide's section, in order."""
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    found = re.finditer(r"(?:<!-- deploy:(\w+) -->\n)?```bash\n(.*?)```", section, re.S)
    return [(m[1], m[2]) for m in found]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def script(blocks: list[tuple[str | None, str]], database: str, port: int) -> str:
    out = ["set -euo pipefail", f"SRC={ROOT}"]
    for marker, body in blocks:
        if marker == "skip":
            continue
        body = body.replace("127.0.0.1:8080", f"127.0.0.1:{port}").replace("PORT=8080", f"PORT={port}")
        body = body.replace("5432/flywheel", f"5432/{database}").replace(
            "-U postgres flywheel", f"-U postgres {database}"
        )
        body = body.replace("6379/0", "6379/9").replace("6379/1", "6379/10")
        if marker == "background":
            body = f"( {body.strip()} ) > honcho.log 2>&1 &\n"
        out.append(body)
    return "\n".join(out)


def test_the_guide_has_the_steps_this_test_runs() -> None:
    blocks = steps(GUIDE.read_text(encoding="utf-8"))
    assert [m for m, _ in blocks].count("background") == 1 and [m for m, _ in blocks].count("settings") == 1
    assert any("honcho start -f Procfile" in b for _, b in blocks)
    procfile = (ROOT / "deploy" / "Procfile").read_text(encoding="utf-8")
    assert {line.split(":")[0] for line in procfile.splitlines() if line and not line.startswith("#")} == {
        "web", "worker", "beat"
    }  # fmt: skip
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text(encoding="utf-8"))
    assert {"postgres", "redis", "migrate", "web", "worker", "beat"} <= set(compose["services"])


@pytest.mark.slow
def test_following_the_guide_runs_the_demo_pipeline_through_web_worker_and_beat(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if not os.environ.get("FLYWHEEL_TEST_DATABASE_URL"):
        pytest.skip(
            "the guide deploys on PostgreSQL: runs in the PostgreSQL run (FLYWHEEL_TEST_DATABASE_URL)"
        )
    for tool in ("createdb", "dropdb", "curl", "openssl", "honcho"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed here")
    broker_or_skip()
    database, port = f"fw_guide_{uuid.uuid4().hex[:8]}", _port()
    request.addfinalizer(
        lambda: subprocess.run(
            ["dropdb", "--if-exists", "--force", "-h", "127.0.0.1", "-U", "postgres", database]
        )
    )
    run = script(steps(GUIDE.read_text(encoding="utf-8")), database, port)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLYWHEEL_", "PROMETHEUS_"))}
    env["HOME"] = str(tmp_path)  # the guide's settings only, as on a fresh machine
    proc = subprocess.Popen(
        ["bash", "-c", run], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True, text=True,
    )  # fmt: skip
    try:
        output, _ = proc.communicate(timeout=420)
    finally:
        with_logs = tmp_path / "flywheel-run" / "honcho.log"
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        subprocess.run(["sleep", "3"])
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    logs = with_logs.read_text(errors="replace")[-6000:] if with_logs.exists() else "(no honcho log)"
    assert proc.returncode == 0, f"{output[-6000:]}\n--- web, worker and beat ---\n{logs}"
    demo = json.loads((tmp_path / "flywheel-run" / "demo.json").read_text(encoding="utf-8"))
    assert demo["crm"]["contacts_in_crm"] > 0
    assert re.search(r"score: ok: ", output), output[-3000:]
    # The commenter came in through the web process and was scored by a worker (by the scheduled
    # run or the one asked for: whichever came first after the hook).
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{database}") as conn:
        scores = conn.execute(
            "SELECT s.kind FROM scores s JOIN identities i ON i.member_id = s.subject_id"
            " WHERE i.source = 'github' AND i.handle = 'grace-h' AND s.subject = 'member'"
        ).fetchall()
    assert {"advocate", "lead"} <= {k for (k,) in scores}, scores
    assert re.search(r"crm_sync: ok: hubspot", output), output[-3000:]
    assert re.search(r'flywheel_hook_events_total\{[^}]*source="github"[^}]*\} 1', output), output[-3000:]
    full = with_logs.read_text(errors="replace")
    assert "Celery" in full and "flywheel.run_job" in full  # the jobs ran on Celery workers


def test_every_setting_is_in_the_readme_configuration_table_with_its_default() -> None:
    read = set(
        re.findall(r'"(FLYWHEEL_[A-Z_]+)"', (ROOT / "plugin" / "settings.py").read_text(encoding="utf-8"))
    )
    table = (
        (ROOT / "README.md").read_text(encoding="utf-8").split("## Configuration", 1)[1].split("\n## ", 1)[0]
    )
    rows = [line for line in table.splitlines() if line.startswith("| `FLYWHEEL_")]
    documented = {name for row in rows for name in re.findall(r"`(FLYWHEEL_[A-Z_]+)`", row.split("|")[1])}
    assert read - documented == set(), "settings missing from the README's configuration table"
    assert all(row.split("|")[2].strip() for row in rows), "every row names its default"
