"""Fixtures shared by the plugin tests."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from tests.plugin.test_score import community, ids, ingest


@pytest.fixture
def people(engine: Engine, workspace_id: int) -> dict[str, int]:
    """The scoring community of test_score.py, ingested: who is who by their live member id."""
    ingest(engine, workspace_id, community())
    return ids(engine)
