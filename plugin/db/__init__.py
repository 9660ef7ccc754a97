"""Storage: SQLAlchemy 2.0 typed models, engines and Alembic migrations."""
