"""/ws/alerts: every newly stored alert pushed as it arrives (any role).

Protocol: connect; authenticate with the console's session cookie, an
`Authorization`/`X-API-Key` header, `?token=tw_…` (which may end up in proxy
logs: prefer the others), or, failing those, a first message
`{"token": "tw_…"}` within 10 seconds. Then each message from the server is one
alert, as JSON, shaped like the items of GET /api/v1/alerts. Closing codes:
4401 authentication failed, 4403 cross-site request refused, 1013 the client
fell too far behind (reconnect and catch up with GET /alerts).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated

from fastapi import APIRouter, Depends, WebSocket, WebSocketDisconnect

from tapewatch.api.context import ApiContext, get_context
from tapewatch.api.feed import Subscription
from tapewatch.api.routes import API_PREFIX
from tapewatch.api.security import ACCESS, cached_key_actor, cross_site, session_actor
from tapewatch.service.actors import Actor

router = APIRouter(prefix=API_PREFIX)
AUTH_TIMEOUT_S = 10.0
UNAUTHORIZED, CROSS_SITE, TOO_SLOW = 4401, 4403, 1013


async def feed_viewer(websocket: WebSocket) -> Actor | None:
    """Accept the socket and authenticate its client (any role): the actor, or None once the socket
    has been closed with the reason. The feed's role declaration (in `ACCESS`, as every route's)."""
    await websocket.accept()
    try:
        return await _authenticate(get_context(websocket), websocket)
    except WebSocketDisconnect:
        return None


ACCESS[feed_viewer] = "viewer"


@router.websocket("/ws/alerts")
async def alert_feed(websocket: WebSocket, actor: Annotated[Actor | None, Depends(feed_viewer)]) -> None:
    """Subscribe an authenticated client to the feed, push alerts until it leaves (see the module's protocol)."""
    if actor is None:
        return
    ctx = get_context(websocket)
    subscription = ctx.feed.subscribe()
    ctx.metrics.ws_clients.set(ctx.feed.clients)
    try:
        await _serve(ctx, websocket, subscription)
    finally:
        ctx.feed.unsubscribe(subscription)
        ctx.metrics.ws_clients.set(ctx.feed.clients)


async def _authenticate(ctx: ApiContext, websocket: WebSocket) -> Actor | None:
    """The client's actor, or None after closing the socket with the reason."""
    token = websocket.query_params.get("token") or _header_token(websocket)
    if token is not None:
        actor = await cached_key_actor(ctx, token)
    elif websocket.session:
        if cross_site(websocket):
            await websocket.close(CROSS_SITE, "cross-site WebSocket refused")
            return None
        actor = await session_actor(ctx, websocket.session)
    else:
        actor = await _first_message_actor(ctx, websocket)
    if actor is None:
        await websocket.close(UNAUTHORIZED, "authentication failed: send a valid API key or log in")
    return actor


def _header_token(websocket: WebSocket) -> str | None:
    header = websocket.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return websocket.headers.get("x-api-key")


async def _first_message_actor(ctx: ApiContext, websocket: WebSocket) -> Actor | None:
    try:
        text = await asyncio.wait_for(websocket.receive_text(), AUTH_TIMEOUT_S)
        token = json.loads(text).get("token")
    except (TimeoutError, ValueError, AttributeError, KeyError):
        return None
    if not isinstance(token, str):
        return None
    return await cached_key_actor(ctx, token)


async def _serve(ctx: ApiContext, websocket: WebSocket, subscription: Subscription) -> None:
    """Send queued alerts until the client leaves or falls behind; read (and ignore) what it sends."""
    sender = asyncio.create_task(_send(ctx, websocket, subscription))
    reader = asyncio.create_task(_drain(websocket))
    try:
        await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sender, reader):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _send(ctx: ApiContext, websocket: WebSocket, subscription: Subscription) -> None:
    while True:
        batch = await subscription.queue.get()
        if batch is None:
            ctx.metrics.clients_dropped.inc()
            await websocket.close(TOO_SLOW, "too far behind: reconnect and catch up with GET /api/v1/alerts")
            return
        for text in batch:
            await websocket.send_text(text)
        ctx.metrics.messages_sent.inc(len(batch))


async def _drain(websocket: WebSocket) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
