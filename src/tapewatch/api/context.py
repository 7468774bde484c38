"""What every route needs, opened once per app: settings, database, workflow, lake, live feed, metrics,
caches and the log-in throttle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from sqlalchemy import Engine
from starlette.requests import HTTPConnection

from tapewatch.api.auth_cache import AuthCache
from tapewatch.api.feed import AlertFeed
from tapewatch.api.list_cache import ListCache
from tapewatch.api.metrics import ApiMetrics
from tapewatch.api.throttle import LoginThrottle
from tapewatch.config import Settings
from tapewatch.io.lake import Lake
from tapewatch.service.workflow import Workflow
from tapewatch.store.alert_store import AlertStore


@dataclass
class ApiContext:
    """The app's shared objects; routes get it through the `get_context` dependency."""

    settings: Settings
    store: AlertStore
    workflow: Workflow
    lake: Lake
    feed: AlertFeed
    metrics: ApiMetrics
    auth_cache: AuthCache
    list_cache: ListCache
    reads: Engine
    """The same database without transactions (autocommit): a read costs one round trip, not
    three (BEGIN, SELECT, ROLLBACK). For read-only queries only; changes go through `engine`."""
    login_throttle: LoginThrottle

    @property
    def engine(self) -> Engine:
        """The database with transactions: the service layer's writes (and its own reads)."""
        return self.store.engine


def get_context(connection: HTTPConnection) -> ApiContext:
    """The context of the app serving this request or WebSocket."""
    return connection.app.state.context


async def _context(connection: HTTPConnection) -> ApiContext:
    return get_context(connection)  # async: FastAPI runs it on the event loop, not in a worker thread


Context = Annotated[ApiContext, Depends(_context)]
"""A route parameter of this type receives the app's context."""
