"""Who is calling: an API key (Authorization: Bearer, X-API-Key, ?token= on the WebSocket) or a console session.

Verified credentials are cached for `api.auth_cache_s` (see `auth_cache`), so
a busy client costs no database write per request.

Roles are the service layer's (viewer < analyst < admin): routes declare the
least role they need with `Viewer`, `Analyst` or `Admin`, and pass the actor on,
so the service checks it again where the rule lives. No credentials, or ones
that do not work, are a 401; a role too low is a 403.

A session holds only the user's name (and the key it was opened with, if any):
the user's current role is read again (at most every `api.auth_cache_s`), so a
role change, a disabled user or a revoked key takes effect. Cookie-authenticated changes from
another site (an Origin header naming a different host) are refused, on top of
the cookie's SameSite=Lax and FastAPI's strict JSON content type.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from tapewatch.api.context import ApiContext, get_context
from tapewatch.errors import NotFoundError
from tapewatch.service import auth
from tapewatch.service.actors import Actor

SESSION_COOKIE = "tapewatch_session"
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


def session_actor(engine: Engine, session: dict[str, Any]) -> Actor | None:
    """The actor of a console session with the user's current role, or None once it is no longer valid."""
    name = session.get("user")
    if not isinstance(name, str):
        return None
    try:
        user = auth.get_user(engine, name)
    except NotFoundError:
        return None
    if user.disabled:
        return None
    prefix = session.get("key_prefix")
    if prefix is not None:
        keys = [key for key in auth.list_api_keys(engine, name) if key.prefix == prefix]
        if not keys or keys[0].revoked_at is not None:
            return None
    return Actor(user.name, user.role)


async def cached_key_actor(ctx: ApiContext, token: str) -> Actor | None:
    """`key_actor` through the context's cache (the database is asked in a worker thread)."""
    actor = ctx.auth_cache.get(token)
    if actor is None:
        actor = await run_in_threadpool(key_actor, ctx.engine, token)
        if actor is not None:
            ctx.auth_cache.put(token, actor)
    return actor


async def cached_session_actor(ctx: ApiContext, session: dict[str, Any]) -> Actor | None:
    """`session_actor` through the context's cache."""
    credential = f"session:{session.get('user')}:{session.get('key_prefix')}"
    actor = ctx.auth_cache.get(credential)
    if actor is None:
        actor = await run_in_threadpool(session_actor, ctx.engine, dict(session))
        if actor is not None:
            ctx.auth_cache.put(credential, actor)
    return actor


def open_session(connection: HTTPConnection, actor: Actor, key_prefix: str | None = None) -> None:
    """Start a console session for `actor` (the cookie is signed by SessionMiddleware)."""
    connection.session.clear()
    connection.session.update({"user": actor.name, **({"key_prefix": key_prefix} if key_prefix else {})})


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
        actor = await cached_session_actor(ctx, connection.session)
        if actor is None:
            connection.session.clear()
            raise _unauthorized("session expired or no longer valid: log in again")
        if connection.scope.get("method", "GET") not in SAFE_METHODS and cross_site(connection):
            raise HTTPException(403, "cross-site request refused: use an API key, or the console itself")
        return actor
    raise _unauthorized(UNAUTHENTICATED)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def requires(role: str) -> Any:
    """A dependency: the caller, provided their role is at least `role` (else 403)."""

    async def at_least(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
        actor.require(role)
        return actor

    at_least.__name__ = f"requires_{role}"
    return at_least


Viewer = Annotated[Actor, Depends(current_actor)]
Analyst = Annotated[Actor, Depends(requires("analyst"))]
Admin = Annotated[Actor, Depends(requires("admin"))]
