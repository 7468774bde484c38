"""Users, roles, API keys and passwords.

API keys look like `tw_<prefix>_<secret>`: the prefix is stored in clear to find
the key, the secret only as a SHA-256 hash (it is 32 random bytes, so a slow
hash adds nothing) and compared in constant time. Passwords, chosen by people,
are hashed with scrypt and a per-user salt. A key or password is shown once,
when made, and never logged.

Only admins make keys. A key made by someone holding a key is that key's child:
revoking a key revokes its descendants and ends every session opened with any of
them. A password change or a user's removal ends all of that user's sessions
(removal also revokes all their keys). Checking a password costs one scrypt
whether or not the user exists, so the time of an answer does not tell who does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import datetime
from functools import cache
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, Engine, Select, insert, select, update
from sqlalchemy.exc import IntegrityError

from tapewatch.errors import ConflictError, InputError, NotFoundError
from tapewatch.service import audit, sessions
from tapewatch.service.actors import Actor, check_role
from tapewatch.store.models import ApiKeyRow, UserRow, utc_now

USERS = UserRow.__table__
KEYS = ApiKeyRow.__table__
KEY_PATTERN = re.compile(r"^tw_([A-Za-z0-9]{8})_([A-Za-z0-9_-]{20,})$")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class User(BaseModel):
    id: int
    name: str
    role: str
    disabled: bool
    created_at: datetime


class ApiKey(BaseModel):
    id: int
    user: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def create_user(engine: Engine, actor: Actor, name: str, role: str, password: str | None = None) -> User:
    """A new user (admin only); names are unique."""
    actor.require("admin")
    if not NAME_PATTERN.match(name):
        raise InputError(f"user name '{name}': expected 1–64 letters, digits or _.@-")
    check_role(role)
    hashed = hash_password(password) if password else None
    try:
        with engine.begin() as conn:
            user_id = conn.execute(
                insert(USERS)
                .values(name=name, role=role, password_hash=hashed, disabled=False, created_at=utc_now())
                .returning(USERS.c.id)
            ).scalar_one()
            audit.record(conn, actor, "user.create", "user", user_id, name=name, role=role)
    except IntegrityError:
        raise ConflictError(f"user '{name}' already exists") from None
    return get_user(engine, name)


def get_user(engine: Engine, name: str) -> User:
    with engine.connect() as conn:
        row = conn.execute(select(USERS).where(USERS.c.name == name)).first()
    if row is None:
        raise NotFoundError(f"user '{name}': no such user")
    return User.model_validate(row._asdict())


def list_users(engine: Engine) -> list[User]:
    with engine.connect() as conn:
        return [User.model_validate(r._asdict()) for r in conn.execute(select(USERS).order_by(USERS.c.name))]


def set_role(engine: Engine, actor: Actor, name: str, role: str) -> User:
    """Change a user's role (admin only)."""
    actor.require("admin")
    check_role(role)
    user = get_user(engine, name)
    with engine.begin() as conn:
        conn.execute(update(USERS).where(USERS.c.id == user.id).values(role=role))
        audit.record(conn, actor, "user.role", "user", user.id, name=name, old=user.role, new=role)
    return get_user(engine, name)


def create_api_key(
    engine: Engine, actor: Actor, user_name: str, key_name: str = "default"
) -> tuple[ApiKey, str]:
    """A new key for a user (admins only); returns it with the secret, which is not kept and cannot be
    shown again. A key made by an admin holding a key is tied to that key (see the module)."""
    actor.require("admin")
    user = get_user(engine, user_name)
    if user.disabled:
        raise ConflictError(f"user '{user_name}' has been removed: it cannot have new keys")
    prefix = "".join(
        secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789") for _ in range(8)
    )
    secret = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        key_id = conn.execute(
            insert(KEYS)
            .values(
                user_id=user.id,
                name=key_name[:64],
                prefix=prefix,
                secret_hash=_digest(secret),
                created_at=utc_now(),
                parent_key_id=actor.key_id,
            )
            .returning(KEYS.c.id)
        ).scalar_one()
        audit.record(
            conn, actor, "key.create", "api_key", key_id, user=user_name, name=key_name, prefix=prefix
        )
    return _key(engine, key_id), f"tw_{prefix}_{secret}"


def list_api_keys(engine: Engine, user_name: str | None = None) -> list[ApiKey]:
    query = _key_query().order_by(KEYS.c.id)
    if user_name is not None:
        query = query.where(USERS.c.name == user_name)
    with engine.connect() as conn:
        return [ApiKey.model_validate(r._asdict()) for r in conn.execute(query)]


def revoke_api_key(engine: Engine, actor: Actor, key_id: int) -> ApiKey:
    """Revoke a key (its owner if an analyst, or an admin); a revoked key never authenticates again.

    The keys made with it go too, and every session opened with any of them ends.
    """
    key = _key(engine, key_id)
    actor.require("analyst" if actor.name == key.user else "admin")
    with engine.begin() as conn:
        _revoke_keys(conn, actor, _descendants(conn, [key_id]))
    return _key(engine, key_id)


def _descendants(conn: Connection, key_ids: list[int]) -> list[int]:
    """These keys and every key made with them, however deep."""
    found, frontier = list(key_ids), list(key_ids)
    while frontier:
        frontier = list(conn.execute(select(KEYS.c.id).where(KEYS.c.parent_key_id.in_(frontier))).scalars())
        found += [key for key in frontier if key not in found]
    return found


def _revoke_keys(conn: Connection, actor: Actor, key_ids: list[int]) -> None:
    """Revoke the live ones of these keys (audited one by one) and end the sessions opened with them."""
    live = conn.execute(
        _key_query().where(KEYS.c.id.in_(key_ids), KEYS.c.revoked_at.is_(None)).order_by(KEYS.c.id)
    ).all()
    if live:
        conn.execute(update(KEYS).where(KEYS.c.id.in_([k.id for k in live])).values(revoked_at=utc_now()))
    for key in live:
        audit.record(conn, actor, "key.revoke", "api_key", key.id, user=key.user, prefix=key.prefix)
    sessions.end_sessions(conn, key_ids=key_ids)


def set_password(engine: Engine, actor: Actor, name: str, password: str) -> User:
    """Set a user's console password (admin only); every session the user has open ends."""
    actor.require("admin")
    user = get_user(engine, name)
    hashed = hash_password(password)
    with engine.begin() as conn:
        conn.execute(update(USERS).where(USERS.c.id == user.id).values(password_hash=hashed))
        ended = sessions.end_sessions(conn, user_id=user.id)
        audit.record(conn, actor, "user.password", "user", user.id, name=name, sessions_ended=ended)
    return user


def remove_user(engine: Engine, actor: Actor, name: str) -> User:
    """Remove a user (admin only, not oneself): disabled for good, every key revoked, every session ended.

    The row stays, so the audit log and cases keep naming who did what.
    """
    actor.require("admin")
    if name == actor.name:
        raise ConflictError(f"user '{name}': you cannot remove yourself (ask another admin)")
    user = get_user(engine, name)
    with engine.begin() as conn:
        conn.execute(update(USERS).where(USERS.c.id == user.id).values(disabled=True))
        keys = list(conn.execute(select(KEYS.c.id).where(KEYS.c.user_id == user.id)).scalars())
        _revoke_keys(conn, actor, _descendants(conn, keys))
        sessions.end_sessions(conn, user_id=user.id)
        audit.record(conn, actor, "user.remove", "user", user.id, name=name)
    return get_user(engine, name)


def authenticate_key(engine: Engine, token: str) -> Actor | None:
    """The actor a presented key belongs to, or None (unknown, wrong, revoked, or its user disabled)."""
    match = KEY_PATTERN.match(token.strip())
    if match is None:
        return None
    prefix, secret = match.groups()
    query = (
        select(KEYS.c.id, KEYS.c.secret_hash, KEYS.c.revoked_at, USERS.c.name, USERS.c.role, USERS.c.disabled)
        .join(USERS, USERS.c.id == KEYS.c.user_id)
        .where(KEYS.c.prefix == prefix)
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None or not hmac.compare_digest(row.secret_hash, _digest(secret)):
        return None
    if row.revoked_at is not None or row.disabled:
        return None
    with engine.begin() as conn:
        conn.execute(update(KEYS).where(KEYS.c.id == row.id).values(last_used_at=utc_now()))
    return Actor(row.name, row.role, key_id=row.id)


def authenticate_password(engine: Engine, name: str, password: str) -> Actor | None:
    """The actor for a user name and password, or None.

    One scrypt is always computed (against a stand-in hash when the user does not exist, is
    disabled or has no password), so every refusal takes as long as a wrong password would.
    """
    with engine.connect() as conn:
        row = conn.execute(select(USERS).where(USERS.c.name == name)).first()
    usable = row is not None and not row.disabled and bool(row.password_hash)
    matches = verify_password(password, row.password_hash if usable else _stand_in_hash())
    if not (usable and matches):
        return None
    return Actor(row.name, row.role)


@cache
def _stand_in_hash() -> str:
    """A hash of a random password, made once: what a refused log-in is checked against."""
    return hash_password(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise InputError("password: expected at least 8 characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **SCRYPT)
    return "scrypt$" + "$".join(base64.b64encode(part).decode() for part in (salt, digest))


def verify_password(password: str, stored: str) -> bool:
    scheme, salt, digest = stored.split("$")
    if scheme != "scrypt":
        return False
    computed = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), **SCRYPT)
    return hmac.compare_digest(computed, base64.b64decode(digest))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _key_query() -> Select[Any]:
    return select(
        KEYS.c.id,
        USERS.c.name.label("user"),
        KEYS.c.name,
        KEYS.c.prefix,
        KEYS.c.created_at,
        KEYS.c.last_used_at,
        KEYS.c.revoked_at,
    ).join(USERS, USERS.c.id == KEYS.c.user_id)


def _key(engine: Engine, key_id: int) -> ApiKey:
    with engine.connect() as conn:
        row = conn.execute(_key_query().where(KEYS.c.id == key_id)).first()
    if row is None:
        raise NotFoundError(f"API key {key_id}: no such key")
    return ApiKey.model_validate(row._asdict())
