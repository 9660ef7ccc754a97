"""An incremental run reads its members in chunks on several connections at once
(``plugin/services/chunk_reads.py``): what it reads is what one connection reads."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest
from sqlalchemy import Engine

from plugin.db.base import to_micros
from plugin.services import chunk_reads
from plugin.services.score_config import load_scoring_config
from plugin.services.score_inputs import Loaded, load_inputs
from scoring.features import Activities
from scoring.lead import HandRaises
from tests.plugin.test_score import FIXED, act, ingest, score


def _read(engine: Engine, workspace_id: int, subset: list[int]) -> Loaded:
    with engine.connect() as conn:
        return load_inputs(conn, workspace_id, load_scoring_config(), to_micros(FIXED), subset)


def _rows(*columns: object) -> list[tuple[float, ...]]:
    """Rows of equal-length columns, NaN as a number, in sorted order: a database returns the
    rows of a query without ORDER BY in any order, and scoring sums over them."""
    arrays = [np.nan_to_num(np.asarray(c, dtype=np.float64), nan=-1e300) for c in columns]
    return sorted(zip(*(a.tolist() for a in arrays), strict=True))


def _same(a: object, b: object, where: str) -> None:
    if isinstance(a, Activities) and isinstance(b, Activities):
        parts = ("member", "kind", "at", "sentiment", "value")
        assert _rows(*(getattr(a, p) for p in parts)) == _rows(*(getattr(b, p) for p in parts)), where
        assert _rows(*(a.sentiments or ())) == _rows(*(b.sentiments or ())), f"{where}.sentiments"
    elif isinstance(a, HandRaises) and isinstance(b, HandRaises):
        assert _rows(*(getattr(a, f.name) for f in fields(a))) == _rows(
            *(getattr(b, f.name) for f in fields(b))
        )
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.shape == b.shape, where
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), where
    elif hasattr(a, "__dataclass_fields__"):
        for f in fields(a):  # type: ignore[arg-type]
            _same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, tuple | list):
        assert isinstance(b, tuple | list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_members_read_in_chunks_on_several_connections_load_what_one_connection_loads(
    engine: Engine, workspace_id: int, people: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    score(engine, workspace_id, full=True)
    ingest(
        engine,
        workspace_id,
        [act(f"new-{name}", name, "post", 0.5, title="What is the price?") for name in people],
    )
    subset = sorted(people.values())
    assert len(subset) >= 6
    monkeypatch.setattr(chunk_reads, "READ_THREADS", 1)
    alone = _read(engine, workspace_id, subset)
    monkeypatch.setattr(chunk_reads, "READ_THREADS", 4)
    monkeypatch.setattr(chunk_reads, "MIN_CHUNK", 1)  # every member a chunk of its own
    calls: list[int] = []
    original = chunk_reads.in_chunks

    def counted(values: list[int], size: int = chunk_reads.IN_CHUNK):  # type: ignore[no-untyped-def]
        calls.append(size)
        return original(values, size)

    monkeypatch.setattr(chunk_reads, "in_chunks", counted)
    shared = _read(engine, workspace_id, subset)
    assert calls and max(calls) < len(subset)  # the members were split over connections
    assert alone.inputs.acts.member.size > 0 and alone.inputs.raises.member.size > 0
    _same(alone, shared, "loaded")


def test_an_in_memory_database_is_read_on_its_one_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import StaticPool

    memory = create_engine("sqlite://", poolclass=StaticPool)
    seen: list[int] = []
    with memory.connect() as conn:
        got = chunk_reads.read_chunks(
            conn, list(range(2_000)), lambda own, part, _: seen.append(id(own)) or len(part)
        )
    assert sum(got) == 2_000 and set(seen) == {id(conn)}  # no other connection would see its data
