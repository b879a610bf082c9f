"""Alembic migrations (`soa migrate`)."""
