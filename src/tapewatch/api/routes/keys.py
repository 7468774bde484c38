"""/keys: API keys. Admins make and revoke anyone's; analysts may revoke their own; everyone lists their own.

Only admins make keys, so a stolen viewer's or analyst's credential cannot leave a
key behind; a key made by an admin holding a key dies with that key (see
`service.auth`). Secrets are shown once.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from tapewatch.api.context import Context
from tapewatch.api.errors import error_responses
from tapewatch.api.inputs import DbId, Name
from tapewatch.api.routes import API_PREFIX
from tapewatch.api.security import Admin, Analyst, Viewer
from tapewatch.service import auth
from tapewatch.service.auth import ApiKey

router = APIRouter(prefix=f"{API_PREFIX}/keys", tags=["keys"], responses=error_responses(401, 403, 422, 503))


class NewKey(BaseModel):
    """Whose key, and a label to tell keys apart."""

    user: Name = Field(description="whose key (yourself, or anyone for an admin)")
    name: Name = Field("default", description="a label, e.g. where the key is used")


class CreatedKey(BaseModel):
    """The new key and its secret: shown this once, never stored or retrievable again."""

    key: ApiKey
    secret: str


@router.post(
    "",
    response_model=CreatedKey,
    status_code=201,
    responses=error_responses(404, 409, 413),
    summary="New key (admin)",
)
def create_key(ctx: Context, actor: Admin, body: NewKey) -> CreatedKey:
    """The secret is in this response only; store it now."""
    key, secret = auth.create_api_key(ctx.engine, actor, body.user, body.name)
    return CreatedKey(key=key, secret=secret)


@router.get("", response_model=list[ApiKey], summary="List keys (never their secrets)")
def list_keys(
    ctx: Context,
    actor: Viewer,
    user: Annotated[Name | None, Query(description="only this user's (admins; others see their own)")] = None,
) -> list[ApiKey]:
    """Admins see everyone's keys (or one user's); anyone else sees only their own."""
    if actor.role != "admin":
        if user is not None and user != actor.name:
            actor.require("admin")
        user = actor.name
    return auth.list_api_keys(ctx.engine, user)


@router.delete("/{key_id}", response_model=ApiKey, responses=error_responses(404), summary="Revoke a key")
def revoke_key(
    ctx: Context, actor: Analyst, key_id: Annotated[DbId, Path(description="the key's id")]
) -> ApiKey:
    """A revoked key never works again, nor do the keys made with it or the sessions opened with them:
    at once on this server (its credential cache is cleared), within api.auth_cache_s on others."""
    key = auth.revoke_api_key(ctx.engine, actor, key_id)
    ctx.auth_cache.clear()
    return key
