"""Who is calling: an API key (Authorization: Bearer, X-API-Key, ?token= on the WebSocket) or a console session.

Verified API keys are cached for `api.auth_cache_s` (see `auth_cache`), so a
busy client costs no database write per request.

Every route declares who may call it, in one way: a dependency registered in
`ACCESS`. Either `Public` (no credentials: health, metrics, log-in, docs, the
console's files) or the least role it needs, `Viewer`, `Analyst` or `Admin`
(roles are the service layer's, viewer < analyst < admin); the actor is passed
on, so the service checks it again where the rule lives. A test walks every
route of the app and fails on one that declares nothing. No credentials, or ones
that do not work, are a 401; a role too low is a 403.

A session cookie holds only a random token; the session itself is a database
row (`service.sessions`), read on every request (never cached), so logging out,
a password change, removing the user or revoking the key it was opened with ends
it at once on every server, and the user's current role applies. Cookie-authenticated
changes from another site (an Origin header naming a different host) are refused,
on top of the cookie's SameSite=Lax and FastAPI's strict JSON content type.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from tapewatch.api.context import ApiContext, get_context
from tapewatch.service import auth, sessions
from tapewatch.service.actors import Actor

SESSION_COOKIE = "tapewatch_session"
SESSION_LIFETIME_S = 12 * 3600
"""A console session ends this long after log-in at the latest."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
UNAUTHENTICATED = (
    "authentication required: send 'Authorization: Bearer tw_…' or 'X-API-Key: tw_…', "
    "or log in with POST /api/v1/session"
)
BAD_KEY = "API key not accepted: unknown, revoked, malformed, or its user is disabled"

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer tw_…`")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key")
session_cookie = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="The console's signed session cookie"
)


def key_actor(engine: Engine, token: str) -> Actor | None:
    """The actor of an API key, or None."""
    return auth.authenticate_key(engine, token)


async def cached_key_actor(ctx: ApiContext, token: str) -> Actor | None:
    """`key_actor` through the context's cache (the database is asked in a worker thread)."""
    actor = ctx.auth_cache.get(token)
    if actor is None:
        actor = await run_in_threadpool(key_actor, ctx.engine, token)
        if actor is not None:
            ctx.auth_cache.put(token, actor)
    return actor


async def session_actor(ctx: ApiContext, session: dict[str, Any]) -> Actor | None:
    """The actor of the console session whose token the cookie carries, or None once it has ended."""
    token = session.get("sid")
    if not isinstance(token, str):
        return None
    return await run_in_threadpool(sessions.session_actor, ctx.engine, token)


def open_session(connection: HTTPConnection, ctx: ApiContext, actor: Actor) -> None:
    """Start a console session for `actor`: a database row, and its token in the (signed) cookie.

    A session the cookie already held ends first: logging in again in the same browser must not
    leave the old token alive for whoever copied it.
    """
    close_session(connection, ctx)
    token = sessions.open_session(ctx.engine, actor, SESSION_LIFETIME_S)
    connection.session["sid"] = token


def close_session(connection: HTTPConnection, ctx: ApiContext) -> None:
    """Log out: end the cookie's session on the server, and tell the browser to forget the cookie."""
    token = connection.session.get("sid")
    if isinstance(token, str):
        sessions.end_session(ctx.engine, token)
    connection.session.clear()


def cross_site(connection: HTTPConnection) -> bool:
    """True when a browser says the request comes from a page on another host."""
    origin = connection.headers.get("origin")
    if not origin or origin == "null":
        return origin == "null"
    return urlsplit(origin).netloc.lower() != connection.headers.get("host", "").lower()


async def current_actor(
    connection: HTTPConnection,
    bearer_credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    header_key: Annotated[str | None, Depends(api_key_header)],
    cookie: Annotated[str | None, Depends(session_cookie)],
) -> Actor:
    """The authenticated caller, or a 401 that says how to authenticate."""
    ctx = get_context(connection)
    token = bearer_credentials.credentials if bearer_credentials is not None else header_key
    if token is not None:
        actor = await cached_key_actor(ctx, token)
        if actor is None:
            raise _unauthorized(BAD_KEY)
        return actor
    if connection.session:
        actor = await session_actor(ctx, connection.session)
        if actor is None:
            connection.session.clear()
            raise _unauthorized("session expired or no longer valid: log in again")
        if connection.scope.get("method", "GET") not in SAFE_METHODS and cross_site(connection):
            raise HTTPException(403, "cross-site request refused: use an API key, or the console itself")
        return actor
    raise _unauthorized(UNAUTHENTICATED)


async def caller_if_any(
    connection: HTTPConnection,
    bearer_credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    header_key: Annotated[str | None, Depends(api_key_header)],
    cookie: Annotated[str | None, Depends(session_cookie)],
) -> Actor | None:
    """The authenticated caller, or None (for a public route that shows more to some callers)."""
    try:
        return await current_actor(connection, bearer_credentials, header_key, cookie)
    except HTTPException:
        return None


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


ACCESS: dict[Callable[..., Any], str] = {}
"""The dependencies that declare who may call a route, each with what it declares: "public" or a role."""


async def public() -> None:
    """Declares a route open to anyone, without credentials."""


ACCESS[public] = "public"


@cache
def requires(role: str) -> Callable[..., Any]:
    """A dependency: the caller, provided their role is at least `role` (else 403). One per role."""

    async def at_least(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
        actor.require(role)
        return actor

    at_least.__name__ = f"requires_{role}"
    ACCESS[at_least] = role
    return at_least


Public = Depends(public)
"""For a route's (or router's) `dependencies=[Public]`."""
Viewer = Annotated[Actor, Depends(requires("viewer"))]
Analyst = Annotated[Actor, Depends(requires("analyst"))]
Admin = Annotated[Actor, Depends(requires("admin"))]
