"""CDNOW churn benchmark: how well each churn score ranks who buys nothing in the next 39 weeks.

Data: the full CDNOW master file shipped with lifetimes (69,659 transactions, 23,570 customers who
all made their first purchase in Q1 1997; dates are yyyymmdd integers). Several purchases on one
day count as one, as in Fader, Hardie & Lee (2005). Calibration = purchases up to and including
1997-09-30 (the end of week 39 counted from 1997-01-01); holdout = the next 39 weeks, 1997-10-01 to
1998-06-30. A customer is **churned** when they make no purchase in the holdout.

Per customer, from the calibration period (weeks): x = purchase days - 1, t_x = last - first,
T = 1997-09-30 - first (the convention of lifetimes' CDNOW summary: T = 38.86 for a 1 January
buyer). Scores, higher = more likely churned, each timed from those arrays (fits included):

(a) lifetimes BetaGeoFitter: minus ``conditional_expected_number_of_purchases_up_to_time(39, ...)``;
(b) recency alone: days since the last purchase at the cutoff;
(c) ``scoring.bgnbd``: minus ``expected_purchases(params, 39, ...)``;
(d) the Flywheel churn model, exactly as ``flywheel score`` runs it with the packaged defaults:
    every calibration transaction becomes a ``purchase`` activity (its dollars as the amount), the
    scored world is as of the end of 1997-09-30, and the score is the churn probability. The BG/NBD
    fit inside it (on active days, in days) is timed too.

AUC is ``scoring.metrics.roc_auc`` when that module exists, else the rank formula below (average
ranks for ties); the two are cross-checked whenever both are present.

    python -m bench.cdnow_bench              # the table
    python -m bench.cdnow_bench --json       # one JSON line on stdout (the table goes to stderr)
    python -m bench.cdnow_bench --repeat 5   # best of 5 timings per model
    python -m bench.cdnow_bench --weekly     # x, t_x, T from purchase weeks, like lifetimes freq="W"
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import warnings
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import scipy
from numpy.typing import NDArray
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from scipy.stats import rankdata

from bench.figures import emit, figure
from bench.figures import report as bench_report
from scoring.bgnbd import expected_purchases, fit_bgnbd

START = date(1997, 1, 1)
CUTOFF_DAY = 272  # 1997-09-30, day 272 counted from 1997-01-01 = 0: the end of week 39
HOLDOUT_DAYS = 39 * 7
HORIZON_WEEKS = 39.0

Floats = NDArray[np.float64]


def load_transactions() -> tuple[NDArray[np.int64], NDArray[np.int64], Floats]:
    """(customer id, day since 1997-01-01, dollars) per transaction of CDNOW_master.txt.

    The file starts with a header line (``customer_id date number_of_cds dollar_value``), so it is
    read with ``header=0``; ``header=None`` would turn that line into a data row."""
    with warnings.catch_warnings():  # lifetimes sets a pandas option that pandas 3 deprecates
        warnings.simplefilter("ignore")
        from lifetimes.datasets import load_dataset

        frame = load_dataset(
            "CDNOW_master.txt",
            sep=r"\s+",
            header=0,
            names=["customer_id", "date", "quantity", "amount"],
        )
    ymd = frame["date"].to_numpy().astype(np.int64)  # yyyymmdd
    iso = [f"{d // 10000:04d}-{d // 100 % 100:02d}-{d % 100:02d}" for d in ymd.tolist()]
    stamps = np.array(iso, dtype="datetime64[D]")
    days = (stamps - np.datetime64(START.isoformat(), "D")).astype(np.int64)
    ids = frame["customer_id"].to_numpy().astype(np.int64)
    return ids, days, frame["amount"].to_numpy().astype(np.float64)


def summarise(ids: NDArray[np.int64], days: NDArray[np.int64], weekly: bool = False) -> dict[str, Any]:
    """Per-customer calibration summary (weeks), recency in days and the holdout churn label.

    ``weekly``: count purchase *weeks* and measure t_x and T in whole weeks, as lifetimes'
    ``summary_data_from_transaction_data(..., freq="W")`` does (pandas weeks, Monday to Sunday;
    1997-01-01 was a Wednesday). Recency and the churn label stay in days either way.
    """
    pairs = np.unique(np.stack([ids, days], axis=1), axis=0)  # one row per customer purchase day
    customers = np.unique(pairs[:, 0])
    calib = pairs[pairs[:, 1] <= CUTOFF_DAY]
    where = np.searchsorted(customers, calib[:, 0])
    last = np.full(customers.size, -1, dtype=np.int64)
    np.maximum.at(last, where, calib[:, 1])
    holdout = pairs[(pairs[:, 1] > CUTOFF_DAY) & (pairs[:, 1] <= CUTOFF_DAY + HOLDOUT_DAYS)]
    bought_again = np.zeros(customers.size, dtype=bool)
    bought_again[np.searchsorted(customers, holdout[:, 0])] = True
    if np.bincount(where, minlength=customers.size).min() == 0:
        raise RuntimeError("some customers made their first purchase after the calibration cutoff")
    if weekly:
        periods = np.unique(np.stack([calib[:, 0], (calib[:, 1] + 2) // 7], axis=1), axis=0)
        unit, cutoff = 1.0, float((CUTOFF_DAY + 2) // 7)
    else:
        periods, unit, cutoff = calib, 7.0, float(CUTOFF_DAY)
    at = np.searchsorted(customers, periods[:, 0])
    count = np.bincount(at, minlength=customers.size)
    first = np.full(customers.size, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, at, periods[:, 1])
    latest = np.full(customers.size, -1, dtype=np.int64)
    np.maximum.at(latest, at, periods[:, 1])
    return {
        "customers": customers,
        "frequency": (count - 1).astype(np.float64),
        "recency": (latest - first) / unit,
        "T": (cutoff - first) / unit,
        "days_since_last": (CUTOFF_DAY - last).astype(np.float64),
        "churned": ~bought_again,
    }


def rank_auc(scores: Floats, labels: NDArray[np.bool_]) -> float:
    """ROC AUC, Mann-Whitney form: (sum of positive ranks - P(P+1)/2) / (P N), ties averaged."""
    ranks = rankdata(scores, method="average")
    positives = int(labels.sum())
    negatives = labels.size - positives
    return float((ranks[labels].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def auc(scores: Floats, labels: NDArray[np.bool_]) -> float:
    """``scoring.metrics.roc_auc`` if present (cross-checked against ``rank_auc``), else ``rank_auc``."""
    own = rank_auc(scores, labels)
    try:
        from scoring.metrics import roc_auc
    except ImportError:
        return own
    value = float(roc_auc(scores, labels))
    if abs(value - own) > 1e-9:
        raise RuntimeError(f"scoring.metrics.roc_auc gives {value}, the rank formula {own}")
    return value


def timed(run: Callable[[], Floats], repeat: int) -> tuple[Floats, float]:
    """The scores from ``run`` and its best wall time over ``repeat`` calls."""
    best = float("inf")
    scores: Floats = np.empty(0)
    for _ in range(repeat):
        started = time.perf_counter()
        scores = np.asarray(run(), dtype=np.float64)
        best = min(best, time.perf_counter() - started)
    return scores, best


def lifetimes_scores(s: dict[str, Any]) -> Floats:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoFitter

        fitter = BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])
        expected = fitter.conditional_expected_number_of_purchases_up_to_time(
            HORIZON_WEEKS, s["frequency"], s["recency"], s["T"]
        )
    return -np.asarray(expected, dtype=np.float64)


def flywheel_bgnbd_scores(s: dict[str, Any]) -> Floats:
    params = fit_bgnbd(s["frequency"], s["recency"], s["T"])
    return -expected_purchases(params, HORIZON_WEEKS, s["frequency"], s["recency"], s["T"])


def flywheel_churn_scores(ids: NDArray[np.int64], days: NDArray[np.int64], amounts: Floats) -> Floats:
    """Our churn model on purchases: one score per customer, in ``np.unique(ids)`` order."""
    from scoring.churn import ChurnContext
    from scoring.features import DAY_US, Activities
    from scoring.lead import HandRaises, LeadContext
    from scoring.pipeline import Inputs, score_all

    cfg = default_config()
    customers, row = np.unique(ids, return_inverse=True)
    n = customers.size
    epoch = int(datetime(1997, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
    at = epoch + (days.astype(np.float64) * DAY_US).astype(np.int64)
    acts = Activities(
        row.astype(np.int64), np.full(row.size, cfg.type_code("purchase"), np.int16), at,
        np.full(row.size, np.nan), amounts.astype(np.float64),
    )  # fmt: skip
    now = epoch + (CUTOFF_DAY + 1) * DAY_US - 1
    everyone, no_org, unknown = np.ones(n, bool), np.full(n, -1, np.int64), np.full(n, np.nan)
    inputs = Inputs(
        acts, n, now, LeadContext(everyone, no_org, unknown, unknown, unknown, unknown),
        ChurnContext(everyone, no_org, unknown),
        HandRaises(*(np.zeros(0, np.int64) for _ in range(3)), np.zeros(0, np.int16)), 0,
    )  # fmt: skip
    scored = score_all(inputs, cfg, kinds=("churn",)).scored["churn"]
    return scored.score


def default_config() -> Any:
    import tomllib
    from importlib import resources

    from scoring.config import ScoringConfig

    text = resources.files("scoring").joinpath("defaults.toml").read_text("utf-8")
    return ScoringConfig.from_mapping(tomllib.loads(text))


def run(repeat: int, weekly: bool = False) -> dict[str, Any]:
    started = time.perf_counter()
    ids, days, amounts = load_transactions()
    load_seconds = time.perf_counter() - started
    started = time.perf_counter()
    s = summarise(ids, days, weekly)
    summary_seconds = time.perf_counter() - started
    labels = s["churned"]
    models: list[tuple[str, Callable[[], Floats]]] = [
        ("lifetimes BetaGeoFitter, -E[purchases in 39 wk]", lambda: lifetimes_scores(s)),
        ("recency alone (days since last purchase)", lambda: s["days_since_last"]),
        ("scoring.bgnbd, -E[purchases in 39 wk]", lambda: flywheel_bgnbd_scores(s)),
    ]
    results: list[dict[str, Any]] = []
    for name, score in models:
        scores, seconds = timed(score, repeat)
        results.append({"model": name, "auc": auc(scores, labels), "seconds": seconds, "note": ""})
    calib = days <= CUTOFF_DAY
    scores, seconds = timed(lambda: flywheel_churn_scores(ids[calib], days[calib], amounts[calib]), repeat)
    entry = {"model": "flywheel churn model (defaults)", "auc": auc(scores, labels), "seconds": seconds,
             "note": "scoring.pipeline.score_all, kinds=churn"}  # fmt: skip
    results.append(entry)
    return {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "customers": int(labels.size),
        "transactions": int(ids.size),
        "churned": int(labels.sum()),
        "load_seconds": load_seconds,
        "summary_seconds": summary_seconds,
        "repeat": repeat,
        "summary_unit": "purchase weeks (lifetimes freq='W')" if weekly else "purchase days, in weeks",
        "results": results,
    }


def render(console: Console, report: dict[str, Any]) -> None:
    console.print(
        f"CDNOW churn benchmark, {report['date_utc']}, Python {report['python']}, numpy {report['numpy']}, "
        f"scipy {report['scipy']}\n{report['customers']:,} customers, {report['transactions']:,} "
        f"transactions; churned (no purchase 1997-10-01..1998-06-30): {report['churned']:,} "
        f"({report['churned'] / report['customers']:.1%}). Load {report['load_seconds']:.2f} s, "
        f"summary {report['summary_seconds']:.3f} s (shared, not in the model times); x, t_x, T from "
        f"{report['summary_unit']}.",
        markup=False,
        highlight=False,
    )
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("churn score")
    table.add_column("ROC AUC", justify="right")
    table.add_column(f"seconds (best of {report['repeat']})", justify="right")
    table.add_column("note")
    for row in report["results"]:
        table.add_row(
            escape(row["model"]),
            "-" if row["auc"] is None else f"{row['auc']:.4f}",
            "-" if row["seconds"] is None else f"{row['seconds']:.3f}",
            escape(row["note"]),
        )
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cdnow_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON line on stdout (bench/figures.py)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="time each model this many times, keep the best"
    )
    parser.add_argument(
        "--weekly",
        action="store_true",
        help="summarise in purchase weeks, as lifetimes' freq='W' (the issue's 0.767 was measured so)",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    report = run(args.repeat, args.weekly)
    out = Console(stderr=args.json)
    if not out.is_terminal:
        out = Console(stderr=args.json, width=150)
    render(out, report)
    if args.json:
        argv = sys.argv[1:] if argv is None else argv
        emit(bench_report("cdnow", "bench.cdnow_bench", figures_of(report), argv, report))
    return 0


def figures_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    """ROC AUC and seconds of each score; ours must rank at least as well as lifetimes' (same run)."""
    unit = "weekly" if "weeks (" in report["summary_unit"] else "days"
    lifetimes = report["results"][0]["auc"]
    out: list[dict[str, Any]] = []
    for row in report["results"]:
        ours = row["model"].startswith("flywheel churn")
        bound = f">= {lifetimes:.4f}" if ours else None
        out.append(figure(f"{row['model']}: ROC AUC ({unit})", round(row["auc"], 4), "", bound))
        out.append(figure(f"{row['model']}: seconds, fit included", round(row["seconds"], 3), "s"))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
