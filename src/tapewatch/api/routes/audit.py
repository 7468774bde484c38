"""/audit: the append-only log of every change anyone made, newest first (analyst+)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from tapewatch.api.context import Context
from tapewatch.api.errors import error_responses
from tapewatch.api.inputs import Limit, Name, Page, page_of
from tapewatch.api.routes import API_PREFIX
from tapewatch.api.security import Analyst
from tapewatch.service.audit import AuditEntry, history

router = APIRouter(prefix=API_PREFIX, tags=["audit"], responses=error_responses(401, 403, 422, 503))
AUDIT_DEPTH = 10_000
"""The log pages by offset from the newest entry, this deep at most (filter to go further back)."""


@router.get("/audit", response_model=Page[AuditEntry], summary="The audit log, newest first")
def audit_log(
    ctx: Context,
    actor: Analyst,
    entity: Annotated[
        Name | None, Query(description="alert, case, user, api_key or rule", examples=["case"])
    ] = None,
    entity_id: Annotated[Name | None, Query(description="one record's id")] = None,
    limit: Limit = 50,
    offset: Annotated[int, Query(ge=0, le=AUDIT_DEPTH, description="entries to skip")] = 0,
) -> Page[AuditEntry]:
    """Who changed what, when, to which record, optionally of one record."""
    entries = history(ctx.engine, entity, entity_id, limit=offset + limit + 1)
    return page_of(entries[offset:], limit, offset)
