"""`create_app`: the FastAPI application, every route under /api/v1, the live feed, the console.

Assembly only: routes live in `api/routes/`, the rules in the service layer.
Middleware, outermost first: the proxy headers (X-Forwarded-Proto/-For, believed
only from `api.trusted_proxies`), the security headers (every response), metrics
(times everything), the body-size limit, then the signed session cookie.
"""

from __future__ import annotations

import gc
import importlib.util
import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from tapewatch import __version__
from tapewatch.api.auth_cache import AuthCache
from tapewatch.api.context import ApiContext, get_context
from tapewatch.api.errors import error_responses, install_error_handlers
from tapewatch.api.feed import AlertFeed
from tapewatch.api.headers import SecurityHeadersMiddleware
from tapewatch.api.limits import BodyLimitMiddleware
from tapewatch.api.list_cache import ClearOnChange, ListCache
from tapewatch.api.metrics import ApiMetrics, MetricsMiddleware
from tapewatch.api.routes import (
    API_PREFIX,
    alerts,
    audit,
    cases,
    detect,
    docs,
    health,
    insight,
    keys,
    live,
    session,
    users,
)
from tapewatch.api.routes.notifications import make_router as notifications_router
from tapewatch.api.security import SESSION_COOKIE, SESSION_LIFETIME_S, Public, requires
from tapewatch.api.throttle import LoginThrottle
from tapewatch.config import Settings
from tapewatch.io.lake import open_lake
from tapewatch.service.workflow import Workflow
from tapewatch.store.alert_store import default_db_path, open_engine, open_store

log = logging.getLogger(__name__)

FEED_QUEUE = 100
"""Polls' worth of alerts a WebSocket client may fall behind before it is dropped (it can catch up
over REST): about 50 s at the default poll interval."""
DESCRIPTION = """\
Tapewatch's alerts, cases and detectors over HTTP.

Authenticate with an API key (`Authorization: Bearer tw_…` or `X-API-Key`) or the console's session
cookie (POST /api/v1/session; failed log-ins back off, answered 429 with Retry-After). Roles: viewer
reads; analyst also works alerts and cases; admin also manages users, keys and notification rules.
Errors are `{"detail": "<one line>"}`.

Live feed: WebSocket `/api/v1/ws/alerts` pushes each newly stored alert, shaped like the items of
GET /api/v1/alerts (see `tapewatch.api.routes.live` for the protocol).
"""


def create_app(settings: Settings, db: str | None = None, lake: str | None = None) -> FastAPI:
    """The API on the database `db` (else `store.db`, else the default SQLite file) and the lake `lake`.

    The database is opened (and migrated) here, so a bad URL fails before a server starts.
    """
    url = db or settings.store.db or default_db_path()
    # Connections are kept open: opening one to PostgreSQL costs more than serving a request.
    pool = {"pool_size": settings.api.db_pool, "max_overflow": settings.api.db_pool}
    store = open_store(url, **pool)
    reads = open_engine(url, isolation_level="AUTOCOMMIT", **pool)
    metrics = ApiMetrics()
    list_cache = ListCache(settings.api.list_cache_s)

    def pushed(alerts: int, _clients: int) -> None:
        metrics.alerts_pushed.inc(alerts)
        list_cache.clear()  # new alerts: every cached page is out of date

    feed = AlertFeed(
        reads,
        poll_s=settings.api.feed_poll_s,
        settle_s=settings.api.feed_settle_s,
        queue_size=FEED_QUEUE,
        on_push=pushed,
    )
    context = ApiContext(
        settings=settings,
        store=store,
        workflow=Workflow(store.engine),
        lake=open_lake(lake, settings.store.lake),
        feed=feed,
        metrics=metrics,
        auth_cache=AuthCache(settings.api.auth_cache_s),
        list_cache=list_cache,
        reads=reads,
        login_throttle=LoginThrottle(),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await feed.start()
        # Everything built so far (modules, the app, its routes and models) lives as long as the
        # server: out of the collector's sight, a full collection no longer walks it mid-request.
        gc.freeze()
        try:
            yield
        finally:
            await feed.stop()
            store.close()
            reads.dispose()

    app = FastAPI(
        title="Tapewatch",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url=None,  # served by `routes.docs`, which declares its access like every route
        docs_url=None,
        redoc_url=None,
    )
    app.state.context = context
    install_error_handlers(app)
    app.add_middleware(
        SessionMiddleware,
        secret_key=_session_secret(settings),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_LIFETIME_S,
        same_site="lax",
        https_only=settings.api.secure_cookies,
    )
    app.add_middleware(ClearOnChange, cache=list_cache)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.api.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(
        SecurityHeadersMiddleware, session_cookie=SESSION_COOKIE, always_secure=settings.api.secure_cookies
    )
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.api.trusted_proxies)
    for module in (alerts, cases, insight, detect, users, keys, audit, session, live, health, docs):
        app.include_router(module.router)
    app.include_router(
        notifications_router(_engine, requires("viewer"), settings.notify, requires("admin")),
        prefix=API_PREFIX,
        responses=error_responses(401, 403, 404, 409, 422),
    )
    with _declared_public(app):  # the console's routes serve only its static files
        _mount_console(app)
    return app


def _engine(connection: HTTPConnection) -> Engine:
    """The app's database, as a dependency for routers that live with their own package (notifications)."""
    return get_context(connection).engine


@contextmanager
def _declared_public(app: FastAPI) -> Iterator[None]:
    """Routes added to `app` meanwhile declare themselves public (`Public`), as every route must declare."""
    app.router.dependencies.append(Public)
    try:
        yield
    finally:
        app.router.dependencies.remove(Public)


def _session_secret(settings: Settings) -> str:
    if settings.api.session_secret:
        return settings.api.session_secret
    log.warning(
        "api.session_secret is not set: using a random one, so console sessions end when the server "
        "restarts (set TAPEWATCH_API__SESSION_SECRET to keep them)"
    )
    return secrets.token_urlsafe(32)


def _mount_console(app: FastAPI) -> None:
    """Serve the analyst console at / when the console package is present (its import errors still show)."""
    if importlib.util.find_spec("tapewatch.console") is None:
        return
    from tapewatch.console import mount_console

    mount_console(app)
