"""number_rows: numeric query results straight into arrays, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
from sqlalchemy import Engine

from plugin.db.sql import number_rows

ROWS = "FROM (SELECT 1 AS a, NULL AS b UNION ALL SELECT 2, 3.5 UNION ALL SELECT 3, -0.25) t WHERE a >= ?"


def test_floats_keep_every_row_with_null_as_nan_and_integers_drop_rows_with_null(engine: Engine) -> None:
    with engine.connect() as conn:
        floats = number_rows(conn, ("a", "b"), ROWS, (1,), np.float64)
        ints = number_rows(conn, ("a", "b * 4"), ROWS, (1,))
        nothing = number_rows(conn, ("a", "b"), ROWS, (9,), np.float64)
    order = np.argsort(floats[:, 0])
    np.testing.assert_array_equal(floats[order], [[1, np.nan], [2, 3.5], [3, -0.25]])
    assert ints.dtype == np.int64
    assert sorted(ints.tolist()) == [[2, 14], [3, -1]]
    assert nothing.shape == (0, 2)


def test_large_integers_stay_exact(engine: Engine) -> None:
    micros = 1_793_491_200_123_457  # an epoch-microsecond time, beyond float32 and near 2**51
    with engine.connect() as conn:
        got = number_rows(conn, ("a", f"a + {micros}"), ROWS, (3,))
    assert got.tolist() == [[3, micros + 3]]
