"""Persistence: SQLAlchemy tables, the engine and session factory, Alembic migrations."""
