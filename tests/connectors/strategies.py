"""Hypothesis strategies shared by the parser tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st


def json_like(
    scalars: st.SearchStrategy[Any], keys: st.SearchStrategy[str], *, key_chars: int = 5, max_entries: int = 5
) -> st.SearchStrategy[Any]:
    """JSON-shaped values: the platform's scalars, in lists and in objects keyed by its own field names."""
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(keys | st.text(max_size=key_chars), inner, max_size=max_entries)
        ),
        max_leaves=10,
    )
