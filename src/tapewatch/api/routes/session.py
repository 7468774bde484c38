"""/session: who am I, log in (name and password, or an API key) for the console's cookie, log out.

Log-ins are throttled per user name and per client address (`api.throttle`):
past a few failures the next attempt waits, exponentially longer, and is
answered 429 with Retry-After until then. Each attempt is counted as a failure
before its password is checked, so guesses sent at once cannot all get past.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, model_validator
from starlette.concurrency import run_in_threadpool

from tapewatch.api.context import Context
from tapewatch.api.errors import error_responses
from tapewatch.api.inputs import Name, Secret
from tapewatch.api.routes import API_PREFIX
from tapewatch.api.security import Public, Viewer, close_session, key_actor, open_session
from tapewatch.service import auth
from tapewatch.service.actors import Actor

router = APIRouter(prefix=f"{API_PREFIX}/session", tags=["session"], responses=error_responses(401, 422, 503))
WRONG = "log-in refused: unknown user, wrong password, revoked key, or a disabled user"
THROTTLED = "too many failed log-ins: try again in {seconds} s"


class Me(BaseModel):
    """The caller as the API sees them."""

    user: str
    role: str


class LogIn(BaseModel):
    """Either `name` and `password`, or `api_key`."""

    name: Name | None = None
    password: Secret | None = None
    api_key: Secret | None = None

    @model_validator(mode="after")
    def _one_way(self) -> LogIn:
        by_password = self.name is not None and self.password is not None
        if by_password == (self.api_key is not None):
            raise ValueError("expected either 'name' and 'password', or 'api_key'")
        return self


@router.get("", response_model=Me, summary="Who am I")
def whoami(actor: Viewer) -> Me:
    """The caller's name and current role (the console asks on load)."""
    return Me(user=actor.name, role=actor.role)


@router.post(
    "",
    response_model=Me,
    responses=error_responses(413, 429),
    dependencies=[Public],
    summary="Log in (sets the session cookie)",
)
async def log_in(ctx: Context, request: Request, body: LogIn) -> Me:
    """Starts a console session: a signed, HTTP-only cookie that the console sends from then on.

    Refused with 429 and Retry-After while the name or the client's address is backing off.
    """
    address = request.client.host if request.client else "unknown"
    wait = ctx.login_throttle.attempt(body.name, address)
    if wait is not None:
        raise HTTPException(429, THROTTLED.format(seconds=wait), headers={"Retry-After": str(wait)})
    try:
        actor = await run_in_threadpool(_authenticate, ctx, body)
    except BaseException:
        ctx.login_throttle.refund(body.name, address)
        raise
    if actor is None:
        raise HTTPException(401, WRONG)  # already counted by attempt()
    ctx.login_throttle.succeeded(actor.name, address)
    await run_in_threadpool(open_session, request, ctx, actor)
    return Me(user=actor.name, role=actor.role)


def _authenticate(ctx: Context, body: LogIn) -> Actor | None:
    if body.api_key is not None:
        return key_actor(ctx.engine, body.api_key)
    return auth.authenticate_password(ctx.engine, body.name or "", body.password or "")


@router.delete("", status_code=204, response_class=Response, dependencies=[Public], summary="Log out")
def log_out(ctx: Context, request: Request) -> Response:
    """Ends the console session, on the server too: the old cookie no longer works anywhere (no
    credentials needed: ending one's own session is always allowed)."""
    close_session(request, ctx)
    return Response(status_code=204)
