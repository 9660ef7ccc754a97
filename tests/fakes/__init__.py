"""Test doubles built on the product's sandboxes: they keep real behaviour and add what tests
need (scheduled faults, expectations checked at teardown)."""
