"""/detect: the batch detectors on data sent in the request (any role; saving needs analyst)."""

from __future__ import annotations

from fastapi import APIRouter

from tapewatch.api.context import Context
from tapewatch.api.detect import DetectRequest, DetectResult, detect
from tapewatch.api.errors import error_responses
from tapewatch.api.routes import API_PREFIX
from tapewatch.api.security import Viewer

router = APIRouter(prefix=API_PREFIX, tags=["detect"], responses=error_responses(401, 403, 413, 422, 503))


@router.post("/detect", response_model=DetectResult, summary="Run the detectors on trades and/or bars")
def run_detectors(ctx: Context, actor: Viewer, body: DetectRequest) -> DetectResult:
    """Alerts for the rows sent; they are saved only with `store: true` (analyst or admin)."""
    if body.store:
        actor.require("analyst")
    alerts, trades, bars = detect(ctx.settings, body)
    stored = ctx.store.save(alerts) if body.store else None
    return DetectResult(alerts=alerts, trades=trades, bars=bars, stored=stored)
