"""Input types shared by the routes: bounded text, database-safe ids, UTC times, paging.

Every string a client sends is bounded and free of NUL (PostgreSQL cannot hold
it), every id fits the column it is compared with, and every time converts to
UTC without overflowing, so a fuzzed or hostile value is a 422 naming the
input, never a database error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Generic, Literal, TypeVar

from fastapi import Query
from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from tapewatch.store.models import ALERT_STATUSES, CASE_STATUSES, DISPOSITIONS, ROLES, SEVERITIES

NO_NUL = r"^[^\x00]*$"
MAX_DB_INT = 2**31 - 1
"""Case, key and comment ids are 32-bit integer columns on PostgreSQL."""
MAX_OFFSET = 10_000_000
MAX_PAGE = 500
DEFAULT_PAGE = 50

Name = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=NO_NUL)]
"""A venue, symbol, typology, user or key name: what the store keeps in 64-character columns."""
AlertId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=NO_NUL)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL)]
Prose = Annotated[str, StringConstraints(min_length=1, max_length=10_000, pattern=NO_NUL)]
"""A reason or a comment (the workflow's own limit is 10,000 characters)."""
DbId = Annotated[int, Field(ge=1, le=MAX_DB_INT)]
Secret = Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=NO_NUL)]
"""A password or an API key as sent (never echoed back in error messages)."""

# The store's vocabularies as closed types, so OpenAPI lists the values and a wrong one is a 422.
Severity = Literal[SEVERITIES]  # type: ignore[valid-type]
AlertStatus = Literal[ALERT_STATUSES]  # type: ignore[valid-type]
CaseStatus = Literal[CASE_STATUSES]  # type: ignore[valid-type]
Disposition = Literal[DISPOSITIONS]  # type: ignore[valid-type]
Role = Literal[ROLES]  # type: ignore[valid-type]


class Closing(BaseModel):
    """How a closed alert or case was judged, and why."""

    disposition: Disposition
    reason: Prose


def _to_utc(moment: datetime) -> datetime:
    """Naive times are UTC (as everywhere in Tapewatch); aware ones are converted."""
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("time out of range once converted to UTC") from None


UtcTime = Annotated[datetime, AfterValidator(_to_utc)]

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a listing; `next_offset` is null on the last page, else the offset of the next."""

    items: list[T]
    limit: int
    offset: int
    next_offset: int | None


Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="items per page (1–500)")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip")]


def page_of(rows: list[T], limit: int, offset: int) -> Page[T]:
    """A page from `limit + 1` fetched rows: the extra row only tells that another page exists."""
    more = len(rows) > limit
    return Page[T](
        items=rows[:limit], limit=limit, offset=offset, next_offset=offset + limit if more else None
    )
