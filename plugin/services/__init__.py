"""Use cases: each module holds one, validating its input and then running it."""
