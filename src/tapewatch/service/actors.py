"""Who is acting, and what their role lets them do: checked here so the API and CLI cannot differ."""

from __future__ import annotations

from dataclasses import dataclass, field

from tapewatch.errors import InputError, PermissionDeniedError
from tapewatch.store.models import ROLES

RANK = {role: rank for rank, role in enumerate(ROLES)}


@dataclass(frozen=True)
class Actor:
    """A user acting through a key, a session or the command line (`system` for the bootstrap CLI).

    `key_id` is the API key the actor holds (directly, or through a session opened with it), so a
    key it makes can be tied to it; it is not part of who the actor is, so equality ignores it.
    """

    name: str
    role: str
    key_id: int | None = field(default=None, compare=False)

    def require(self, role: str) -> None:
        """Refuse unless this actor's role is at least `role` (viewer < analyst < admin)."""
        if RANK[self.role] < RANK[role]:
            raise PermissionDeniedError(
                f"{self.name} ({self.role}) may not do this: it needs the {role} role"
            )


SYSTEM = Actor("system", "admin")
"""The command line on the server itself: whoever can run it owns the database file anyway."""


def check_role(role: str) -> str:
    if role not in RANK:
        raise InputError(f"role '{role}': expected one of {', '.join(ROLES)}")
    return role
