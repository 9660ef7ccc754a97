"""``flywheel evaluate``: check churn or lead scores against the user's own outcomes, and refit.

Labels come from a CSV file with a header: a key column (``member_id``, ``email`` or ``domain``,
the last labelling every member of that organization) and a ``label`` column (1/0, true/false,
yes/no; ``churned`` or ``converted`` are accepted as its name). Scores are computed in memory as of
the given date, so a backtest never touches stored scores.

``--fit`` learns new weights by logistic regression on the model's own components, so every
refitted score still explains itself with the same reasons: churn components keep their points,
each scaled by its learned coefficient; lead fit and intent parts get points in proportion to
theirs. The result is written as a scoring config override with a new version string.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine, select

from plugin.db.base import to_micros
from plugin.db.models import Member, Organization
from plugin.errors import ValidationFailed
from plugin.services.score_inputs import load_inputs
from scoring.config import FIT_PARTS, INTENT_PARTS, ScoringConfig
from scoring.fit import LogisticFit, fit_logistic
from scoring.metrics import Evaluation, evaluate
from scoring.pipeline import score_all
from scoring.result import Scored

TRUE = {"1", "true", "yes", "y", "t"}
FALSE = {"0", "false", "no", "n", "f"}
LABEL_NAMES = ("label", "churned", "converted")
#: churn component -> the config key whose weight scales it
CHURN_WEIGHTS = {
    "base": ("base_weight",),
    "engagement_drop": ("drop", "weight"),
    "negative_sentiment": ("negative_sentiment", "weight"),
    "support_questions": ("support_questions", "weight"),
    "champion_quiet": ("champion_quiet", "weight"),
    "renewal": ("renewal", "weight"),
    "spend": ("spend", "weight"),
}


@dataclass
class EvaluateReport:
    kind: str
    as_of: datetime
    labelled: int
    unmatched: int  # label rows whose key matched no current member
    evaluation: Evaluation
    fitted: dict[str, Any] | None = None
    fitted_evaluation: Evaluation | None = None
    written_to: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "as_of": self.as_of.isoformat(),
            "labelled": self.labelled,
            "unmatched": self.unmatched,
            "evaluation": self.evaluation.as_dict(),
            "fitted": self.fitted,
            "fitted_evaluation": self.fitted_evaluation.as_dict() if self.fitted_evaluation else None,
            "written_to": self.written_to,
        }


def read_labels(path: Path) -> tuple[str, dict[str, bool]]:
    """The key column's name and each key's label; a bad row fails with its line number."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")  # Excel's "CSV UTF-8" starts with a BOM
    except FileNotFoundError:
        raise ValidationFailed(
            f"labels file {path} does not exist", hint="give a CSV file with a header row"
        ) from None
    with handle:
        try:
            return _parse_labels(path, csv.DictReader(handle))
        except UnicodeDecodeError:
            raise ValidationFailed(
                f"labels file {path} is not UTF-8 text", hint="save it as CSV UTF-8 and try again"
            ) from None


def _parse_labels(path: Path, reader: csv.DictReader[str]) -> tuple[str, dict[str, bool]]:
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    key = next((k for k in ("member_id", "email", "domain") if k in fields), None)
    label = next((k for k in LABEL_NAMES if k in fields), None)
    if key is None or label is None:
        raise ValidationFailed(
            f"labels file {path} needs a member_id, email or domain column and a label column",
            fields={"header": ", ".join(fields) or "(empty)"},
            hint="for example: email,label  then rows like  ana@acme.com,1",
        )
    out: dict[str, bool] = {}
    for line, row in enumerate(reader, start=2):
        clean = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        value = clean.get(label, "").lower()
        if value not in TRUE | FALSE or not clean.get(key):
            raise ValidationFailed(
                f"labels file {path}, line {line}: {label}={clean.get(label)!r}, {key}={clean.get(key)!r}",
                fields={label: "1/0, true/false or yes/no", key: "required"},
                hint="fix or remove that row",
            )
        out[clean[key].lower() if key != "member_id" else clean[key]] = value in TRUE
    return key, out


def _member_labels(
    engine: Engine, workspace_id: int, key: str, labels: Mapping[str, bool]
) -> tuple[dict[int, bool], set[str]]:
    """Labels by member id, and the label keys that matched some member."""
    m, o = Member.__table__.c, Organization.__table__.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(m.id, m.primary_email, o.domain)
            .select_from(Member.__table__.outerjoin(Organization.__table__, o.id == m.organization_id))
            .where(m.workspace_id == workspace_id, m.merged_into_id.is_(None))
        ).all()
    out: dict[int, bool] = {}
    matched: set[str] = set()
    for member_id, email, domain in rows:
        refs = {"member_id": str(member_id), "email": (email or "").lower(), "domain": (domain or "").lower()}
        ref = refs[key]
        if ref in labels:
            out[member_id] = labels[ref]
            matched.add(ref)
    return out, matched


def _components(kind: str, scored: Scored) -> tuple[list[str], NDArray[np.float64]]:
    """The model's additive parts, one column each (what the refit weighs)."""
    p = scored.points
    if kind == "churn":
        cols = {"base": p["activity_pattern"] + p["silence"]}
        cols |= {name: p[name] for name in CHURN_WEIGHTS if name in p}
    else:
        cols = {name: p[name] for name in p}
    names = list(cols)
    return names, np.vstack([np.nan_to_num(cols[n]) for n in names]).T


def _fitted_override(
    kind: str, fit: LogisticFit, cfg: ScoringConfig, stamp: str, constant: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The fitted weights as a config override. A part that never varied among the labelled members
    (``constant``: no events in that history, no CRM deals then) taught the fit nothing: it keeps
    its current weight instead of the zero a constant column gets."""
    version = f"{cfg.version}+fit-{stamp}"
    if kind == "churn":
        section: dict[str, Any] = {"bias": round(float(fit.intercept), 6)}
        for name, fitted in fit.coefficients.items():
            coef = 1.0 if name in constant else fitted
            path = CHURN_WEIGHTS[name]
            old = cfg.number("churn", *path)
            if len(path) == 1:
                section[path[0]] = round(old * coef, 6)
            else:
                section.setdefault(path[0], {})[path[1]] = round(old * coef, 6)
        return {"version": version, "churn": section}
    lead = cfg.section("lead")
    out: dict[str, Any] = {"fit_points": {}, "intent_points": {}}
    for group, parts, prefix in (
        ("fit_points", FIT_PARTS, "fit_"),
        ("intent_points", INTENT_PARTS, "intent_"),
    ):
        kept = {p: float(lead[group][p]) for p in parts if prefix + p in constant}
        weights = {
            p: max(fit.coefficients.get(prefix + p, 0.0), 0.0) * float(lead[group][p])
            for p in parts
            if p not in kept
        }
        total = sum(weights.values()) or 1.0
        budget = max(100.0 - sum(kept.values()), 0.0)  # the fitted parts share what the kept leave
        shares = {p: budget * w / total for p, w in weights.items()}
        out[group] = {p: round((kept | shares)[p], 3) for p in parts}
    return {"version": version, "lead": out}


def to_toml(data: Mapping[str, Any], prefix: str = "") -> str:
    """A small TOML writer for nested tables of numbers and strings (what an override holds)."""
    plain = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, Mapping)]
    text = (f"[{prefix}]\n" if prefix and plain else "") + "".join(line + "\n" for line in plain)
    for k, v in data.items():
        if isinstance(v, Mapping):
            text += ("\n" if text else "") + to_toml(v, f"{prefix}.{k}" if prefix else k)
    return text


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def run_evaluate(
    engine: Engine,
    workspace_id: int,
    cfg: ScoringConfig,
    kind: str,
    labels_path: Path,
    as_of: datetime,
    *,
    fit: bool = False,
    output: Path | None = None,
) -> EvaluateReport:
    if kind not in ("churn", "lead"):
        raise ValidationFailed(f"cannot evaluate {kind!r} scores", hint="use --kind churn or --kind lead")
    key, raw = read_labels(labels_path)
    by_member, matched = _member_labels(engine, workspace_id, key, raw)
    with engine.connect() as conn:
        loaded = load_inputs(conn, workspace_id, cfg, to_micros(as_of), live=False)  # history
    scored = score_all(loaded.inputs, cfg, (kind,)).scored[kind]
    ids = loaded.member_ids[scored.rows].tolist()
    pick = [i for i, m in enumerate(ids) if m in by_member]
    y = np.array([by_member[ids[i]] for i in pick], dtype=bool)
    if y.size == 0 or y.all() or not y.any():
        raise ValidationFailed(
            f"the labels match {y.size} scored {kind} members, and both outcomes are needed",
            hint=f"label {'customers' if kind == 'churn' else 'non-customers'} (who get {kind} scores), "
            "some 1 and some 0",
        )
    rows = np.array(pick, dtype=np.int64)
    probs = scored.score[rows] if kind == "churn" else None
    report = EvaluateReport(
        kind,
        as_of,
        int(y.size),
        len(raw) - len(matched),
        evaluate(scored.score[rows], y, probabilities=probs),
    )
    if fit:
        names, matrix = _components(kind, scored)
        model = fit_logistic(matrix[rows], y, feature_names=names, nonnegative=True)
        train = matrix[rows]
        constant = frozenset(n for j, n in enumerate(names) if train.shape[0] and np.ptp(train[:, j]) == 0)
        override = _fitted_override(kind, model, cfg, as_of.strftime("%Y%m%d"), constant)
        report.fitted = override
        fitted_probs = model.predict_proba(matrix[rows])
        report.fitted_evaluation = evaluate(fitted_probs, y, probabilities=fitted_probs)
        target = output or Path(f"flywheel-scoring-{kind}-fit.toml")
        target.write_text(
            f"# Fitted by `flywheel evaluate --fit` on {y.size} labelled members, as of {as_of:%Y-%m-%d}.\n"
            f"# Use it with `flywheel score --config {target}` or FLYWHEEL_SCORING_CONFIG.\n\n"
            + to_toml(override),
            encoding="utf-8",
        )
        report.written_to = str(target)
    return report
