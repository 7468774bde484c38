"""/session: who am I, log in (name and password, or an API key) for the console's cookie, log out."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, model_validator

from tapewatch.api.context import Context
from tapewatch.api.errors import error_responses
from tapewatch.api.inputs import Name, Secret
from tapewatch.api.routes import API_PREFIX
from tapewatch.api.security import Viewer, key_actor, open_session
from tapewatch.service import auth
from tapewatch.service.auth import KEY_PATTERN

router = APIRouter(prefix=f"{API_PREFIX}/session", tags=["session"], responses=error_responses(401, 422, 503))
WRONG = "log-in refused: unknown user, wrong password, revoked key, or a disabled user"


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
    "", response_model=Me, responses=error_responses(413), summary="Log in (sets the session cookie)"
)
def log_in(ctx: Context, request: Request, body: LogIn) -> Me:
    """Starts a console session: a signed, HTTP-only cookie that the console sends from then on."""
    if body.api_key is not None:
        actor = key_actor(ctx.engine, body.api_key)
        match = KEY_PATTERN.match(body.api_key.strip())
        prefix = match.group(1) if match else None
    else:
        actor = auth.authenticate_password(ctx.engine, body.name or "", body.password or "")
        prefix = None
    if actor is None:
        raise HTTPException(401, WRONG)
    open_session(request, actor, prefix)
    return Me(user=actor.name, role=actor.role)


@router.delete("", status_code=204, response_class=Response, summary="Log out")
def log_out(request: Request) -> Response:
    """Ends the console session (no credentials needed: forgetting a cookie is always allowed)."""
    request.session.clear()
    return Response(status_code=204)
