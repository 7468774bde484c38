"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tapewatch.store.alert_store import open_engine
from tapewatch.store.models import metadata
from unit.store.test_store import BACKENDS, postgres_schema


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrated_database_matches_the_models(backend, tmp_path):
    def differences(url: str) -> list:
        engine = open_engine(url)
        try:
            with engine.connect() as conn:
                return compare_metadata(MigrationContext.configure(conn), metadata)
        finally:
            engine.dispose()

    if backend == "sqlite":
        assert differences(str(tmp_path / "t.db")) == []
    else:
        with postgres_schema() as url:
            assert differences(url) == []
