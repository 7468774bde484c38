"""/users: the user list (analysts, to assign cases), creating users and changing roles (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from tapewatch.api.context import Context
from tapewatch.api.errors import error_responses
from tapewatch.api.inputs import Name, Role, Secret
from tapewatch.api.routes import API_PREFIX
from tapewatch.api.security import Admin, Analyst
from tapewatch.service import auth
from tapewatch.service.auth import User

router = APIRouter(
    prefix=f"{API_PREFIX}/users", tags=["users"], responses=error_responses(401, 403, 422, 503)
)


class NewUser(BaseModel):
    """A user to create."""

    name: Name
    role: Role
    password: Annotated[Secret, Field(min_length=8)] | None = Field(
        None, description="only for console log-in; API keys need none"
    )


class RoleChange(BaseModel):
    """The user's new role."""

    role: Role


@router.get("", response_model=list[User], summary="List users (analyst+)")
def list_users(ctx: Context, actor: Analyst) -> list[User]:
    """Every user's name and role: analysts need them to assign cases."""
    return auth.list_users(ctx.engine)


@router.post(
    "", response_model=User, status_code=201, responses=error_responses(409, 413), summary="Create a user"
)
def create_user(ctx: Context, actor: Admin, body: NewUser) -> User:
    """A new user with a role; a password only if they will log in to the console."""
    return auth.create_user(ctx.engine, actor, body.name, body.role, body.password)


@router.patch("/{name}", response_model=User, responses=error_responses(404, 413), summary="Change a role")
def change_role(
    ctx: Context, actor: Admin, name: Annotated[Name, Path(description="the user")], body: RoleChange
) -> User:
    """The new role applies at once on this server (its credential cache is cleared)."""
    user = auth.set_role(ctx.engine, actor, name, body.role)
    ctx.auth_cache.clear()
    return user
