"""/users: the user list (analysts, to assign cases); creating, changing and removing users (admins).

Setting a password or removing a user ends that user's sessions at once; removal
also revokes every key the user has (the row stays, for the audit log).
"""

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


class PasswordChange(BaseModel):
    """The user's new console password."""

    password: Annotated[Secret, Field(min_length=8)]


UserName = Annotated[Name, Path(description="the user")]


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
def change_role(ctx: Context, actor: Admin, name: UserName, body: RoleChange) -> User:
    """The new role applies at once on this server (its credential cache is cleared)."""
    user = auth.set_role(ctx.engine, actor, name, body.role)
    ctx.auth_cache.clear()
    return user


@router.put(
    "/{name}/password",
    response_model=User,
    responses=error_responses(404, 413),
    summary="Set a password (ends the user's sessions)",
)
def set_password(ctx: Context, actor: Admin, name: UserName, body: PasswordChange) -> User:
    """The new password works at once; every console session the user had open ends."""
    return auth.set_password(ctx.engine, actor, name, body.password)


@router.delete(
    "/{name}",
    response_model=User,
    responses=error_responses(404, 409),
    summary="Remove a user (revokes their keys, ends their sessions)",
)
def remove_user(ctx: Context, actor: Admin, name: UserName) -> User:
    """The user is disabled for good: no key, session or password of theirs works again."""
    user = auth.remove_user(ctx.engine, actor, name)
    ctx.auth_cache.clear()
    return user
