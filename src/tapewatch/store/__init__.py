"""Persistence of alerts (SQLAlchemy; SQLite by default)."""
