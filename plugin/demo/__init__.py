"""The deterministic demo community: people, organizations and their activity (no database)."""
