"""`flywheel evaluate`: scores checked against the user's own outcomes, and weights refitted."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import Engine

from connectors.records import parse_record
from plugin.cli import cli
from plugin.services.ingest import Ingestor
from plugin.services.score_config import load_scoring_config
from tests.plugin.helpers import record

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)


def _community(engine: Engine, workspace_id: int) -> tuple[list[str], list[str]]:
    """Twelve customers who stay busy and twelve who went quiet months ago."""
    rows, busy, quiet = [], [], []
    for i in range(12):
        busy.append(f"busy{i}@cust{i}.io")
        quiet.append(f"quiet{i}@old{i}.io")
        for w in range(30):
            for email, age in ((busy[-1], 3 * w + 1), (quiet[-1], 3 * w + 120)):
                when = (AS_OF - timedelta(days=age)).isoformat()
                rows.append(
                    record(f"{email}-{w}", kind="post", when=when, email=email, lifecycle_stage="customer")
                )
    with Ingestor(engine, workspace_id) as ingestor:
        for r in rows:
            ingestor.add(parse_record(r))
    return busy, quiet


def _labels(path: Path, busy: list[str], quiet: list[str], extra: str = "") -> Path:
    lines = ["email,churned"] + [f"{e},0" for e in busy] + [f"{e},1" for e in quiet]
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def test_churn_scores_rank_the_accounts_that_left_and_fit_writes_a_usable_config(
    engine: Engine, workspace_id: int, runner: CliRunner, tmp_path: Path
) -> None:
    busy, quiet = _community(engine, workspace_id)
    labels = _labels(tmp_path / "labels.csv", busy, quiet, "nobody@nowhere.io,1\n")
    out = tmp_path / "fitted.toml"
    args = ["evaluate", "--kind", "churn", "--labels", str(labels), "--as-of", "2026-06-01"]
    result = runner.invoke(cli, [*args, "--fit", "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["labelled"] == 24 and report["unmatched"] == 1
    assert report["evaluation"]["auc"] == 1.0  # every quiet customer ranks above every busy one
    assert 0 <= report["evaluation"]["brier"] < 0.25
    assert report["fitted_evaluation"]["auc"] >= 0.9
    fitted = tomllib.loads(out.read_text(encoding="utf-8"))
    assert fitted["version"].startswith("flywheel-scores/1+fit-")
    assert "bias" in fitted["churn"] and "base_weight" in fitted["churn"]
    cfg = load_scoring_config(out)  # the written file is a valid override
    assert cfg.version == fitted["version"] and cfg.weights_hash != load_scoring_config().weights_hash


def test_bad_labels_name_the_line_and_one_sided_labels_are_refused(
    engine: Engine, workspace_id: int, runner: CliRunner, tmp_path: Path
) -> None:
    busy, quiet = _community(engine, workspace_id)
    bad = _labels(tmp_path / "bad.csv", busy, quiet, "someone@x.io,maybe\n")
    result = runner.invoke(cli, ["evaluate", "--kind", "churn", "--labels", str(bad), "--json"])
    assert result.exit_code == 2
    assert "line 26" in json.loads(result.output)["error"]
    one_sided = tmp_path / "one.csv"
    one_sided.write_text("email,label\n" + "".join(f"{e},1\n" for e in quiet), encoding="utf-8")
    result = runner.invoke(cli, ["evaluate", "--kind", "churn", "--labels", str(one_sided)])
    assert result.exit_code == 2 and "both outcomes" in result.output
    header = tmp_path / "header.csv"
    header.write_text("who,what\nx,1\n", encoding="utf-8")
    result = runner.invoke(cli, ["evaluate", "--kind", "lead", "--labels", str(header)])
    assert result.exit_code == 2 and "member_id, email or domain" in result.output


def test_a_fit_keeps_the_weight_of_a_part_the_history_never_showed() -> None:
    """Backtests see no open CRM deals (their past state is unknown), so the fit learns nothing of
    `open_deal`: it keeps its weight instead of the zero a constant column gets, and the fitted
    parts share the rest of the 100 points."""
    from plugin.services.evaluate import _fitted_override
    from scoring.config import INTENT_PARTS
    from scoring.fit import LogisticFit

    cfg = load_scoring_config()
    coefs = {f"intent_{p}": 1.0 for p in INTENT_PARTS} | {"intent_open_deal": 0.0}
    fit = LogisticFit(intercept=0.0, coefficients=coefs, l2=1.0, n=100, log_loss=0.5, converged=True)
    intent = _fitted_override("lead", fit, cfg, "20260601", frozenset({"intent_open_deal"}))["lead"][
        "intent_points"
    ]
    old = cfg.section("lead")["intent_points"]
    assert intent["open_deal"] == old["open_deal"] == 15
    assert abs(sum(intent.values()) - 100.0) < 0.01
    others = {p: intent[p] for p in INTENT_PARTS if p != "open_deal"}
    scale = others["hand_raise"] / old["hand_raise"]
    assert all(abs(v - old[p] * scale) < 0.01 for p, v in others.items())  # in their old proportions
    zeroed = _fitted_override("lead", fit, cfg, "20260601")["lead"]["intent_points"]
    assert zeroed["open_deal"] == 0.0  # told nothing is constant, the zero coefficient stands
