"""Console sessions kept on the server, so that logging out (or losing the right to be in) ends them.

The browser holds only a random token (in the signed session cookie); the
database holds its SHA-256 digest, who it belongs to, the API key it was opened
with (if any), when it expires and whether it was revoked. Every request with a
cookie reads that row, so a revocation applies at once on every server process.
`auth` revokes sessions when a password changes, a user is removed or a key is
revoked; `end_session` is log-out.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import Connection, Engine, delete, insert, or_, select, update

from tapewatch.service.actors import Actor
from tapewatch.store.models import ApiKeyRow, SessionRow, UserRow, utc_now

SESSIONS = SessionRow.__table__
USERS = UserRow.__table__
KEYS = ApiKeyRow.__table__
KEEP_ENDED = timedelta(days=30)
"""Ended sessions are deleted this long after they expire (a log-in clears them): the table stays small."""


def open_session(engine: Engine, actor: Actor, lifetime_s: float) -> str:
    """A new session for `actor` (tied to `actor.key_id` when logged in with a key); returns its token."""
    token = secrets.token_urlsafe(32)
    now = utc_now()
    with engine.begin() as conn:
        conn.execute(delete(SESSIONS).where(SESSIONS.c.expires_at < now - KEEP_ENDED))
        user_id = conn.execute(select(USERS.c.id).where(USERS.c.name == actor.name)).scalar_one()
        conn.execute(
            insert(SESSIONS).values(
                token_hash=_digest(token),
                user_id=user_id,
                api_key_id=actor.key_id,
                created_at=now,
                expires_at=now + timedelta(seconds=lifetime_s),
            )
        )
    return token


def session_actor(engine: Engine, token: str) -> Actor | None:
    """The actor of a live session with the user's current role, or None (unknown, ended, expired, or
    its user disabled or its key revoked)."""
    query = (
        select(USERS.c.name, USERS.c.role, SESSIONS.c.api_key_id)
        .join(USERS, USERS.c.id == SESSIONS.c.user_id)
        .outerjoin(KEYS, KEYS.c.id == SESSIONS.c.api_key_id)
        .where(
            SESSIONS.c.token_hash == _digest(token),
            SESSIONS.c.revoked_at.is_(None),
            SESSIONS.c.expires_at > utc_now(),
            USERS.c.disabled.is_(False),
            or_(SESSIONS.c.api_key_id.is_(None), KEYS.c.revoked_at.is_(None)),
        )
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else Actor(row.name, row.role, key_id=row.api_key_id)


def end_session(engine: Engine, token: str) -> bool:
    """Log out: the session of this token ends now. False when it had already ended or never existed."""
    with engine.begin() as conn:
        ended = conn.execute(
            update(SESSIONS)
            .where(SESSIONS.c.token_hash == _digest(token), SESSIONS.c.revoked_at.is_(None))
            .values(revoked_at=utc_now())
        )
    return bool(ended.rowcount)


def end_sessions(conn: Connection, *, user_id: int | None = None, key_ids: Iterable[int] = ()) -> int:
    """End every live session of a user, or opened with any of these keys, in the caller's transaction."""
    keys = list(key_ids)
    condition = SESSIONS.c.user_id == user_id if user_id is not None else SESSIONS.c.api_key_id.in_(keys)
    ended = conn.execute(
        update(SESSIONS).where(condition, SESSIONS.c.revoked_at.is_(None)).values(revoked_at=utc_now())
    )
    return ended.rowcount


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
