"""`tapewatch users …` and `tapewatch keys …`: bootstrap and manage who may use the API and console.

Run on the server itself, as the `system` actor (whoever can run it can open the
database file anyway). A new key's secret is printed once, to stdout, so it can be
piped into a secret store; everything else goes to stderr.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tapewatch.cli.options import ConfigOption, DbOption, settings_and_engine
from tapewatch.cli.terminal import err

out = Console(soft_wrap=True)


def users_add(
    name: Annotated[str, typer.Argument(help="User name (letters, digits, _.@-).")],
    role: Annotated[str, typer.Option(help="viewer, analyst or admin.")] = "viewer",
    with_password: Annotated[
        bool, typer.Option("--with-password", help="Ask for a password (for console log-in).")
    ] = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Add a user with a role."""
    from tapewatch.service.actors import SYSTEM
    from tapewatch.service.auth import create_user

    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True) if with_password else None
    _, engine = settings_and_engine(db, config)
    try:
        user = create_user(engine, SYSTEM, name, role, password=password)
    finally:
        engine.dispose()
    err.print(f"user {user.name} added ({user.role})", highlight=False)


def users_password(
    name: Annotated[str, typer.Argument(help="Whose password.")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Set a user's console password (asked twice); every session the user has open ends."""
    from tapewatch.service.actors import SYSTEM
    from tapewatch.service.auth import set_password

    password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    _, engine = settings_and_engine(db, config)
    try:
        set_password(engine, SYSTEM, name, password)
    finally:
        engine.dispose()
    err.print(f"password of {name} set; their console sessions have ended", highlight=False)


def users_remove(
    name: Annotated[str, typer.Argument(help="Who to remove.")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Remove a user: disabled for good, every key revoked, every session ended (the audit log keeps them)."""
    from tapewatch.service.actors import SYSTEM
    from tapewatch.service.auth import remove_user

    _, engine = settings_and_engine(db, config)
    try:
        remove_user(engine, SYSTEM, name)
    finally:
        engine.dispose()
    err.print(f"user {name} removed: keys revoked, sessions ended", highlight=False)


def users_list(db: DbOption = None, config: ConfigOption = None) -> None:
    """List users and their roles."""
    from tapewatch.service.auth import list_users

    _, engine = settings_and_engine(db, config)
    try:
        users = list_users(engine)
    finally:
        engine.dispose()
    table = Table("name", "role", "disabled", "created")
    for user in users:
        table.add_row(
            user.name, user.role, "yes" if user.disabled else "", f"{user.created_at:%Y-%m-%d %H:%M}"
        )
    out.print(table)


def keys_create(
    user: Annotated[str, typer.Option("--user", help="Whose key.")],
    name: Annotated[
        str, typer.Option("--name", help="A label, e.g. the machine that will use it.")
    ] = "default",
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Make an API key; the secret is printed once and cannot be shown again."""
    from tapewatch.service.actors import SYSTEM
    from tapewatch.service.auth import create_api_key

    _, engine = settings_and_engine(db, config)
    try:
        key, secret = create_api_key(engine, SYSTEM, user, name)
    finally:
        engine.dispose()
    err.print(
        f"key {key.id} ({key.name}) for {key.user}; keep it now, it is not shown again:", highlight=False
    )
    print(secret)


def keys_list(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's keys.")] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """List API keys (never their secrets)."""
    from tapewatch.service.auth import list_api_keys

    _, engine = settings_and_engine(db, config)
    try:
        keys = list_api_keys(engine, user)
    finally:
        engine.dispose()
    table = Table("id", "user", "name", "prefix", "last used", "revoked")
    for key in keys:
        used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
        revoked = f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else ""
        table.add_row(str(key.id), key.user, key.name, key.prefix, used, revoked)
    out.print(table)


def keys_revoke(
    key_id: Annotated[int, typer.Argument(help="The key's id (from `tapewatch keys list`).")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Revoke an API key."""
    from tapewatch.service.actors import SYSTEM
    from tapewatch.service.auth import revoke_api_key

    _, engine = settings_and_engine(db, config)
    try:
        key = revoke_api_key(engine, SYSTEM, key_id)
    finally:
        engine.dispose()
    err.print(f"key {key.id} ({key.name}, {key.user}) revoked", highlight=False)
