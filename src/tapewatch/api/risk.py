"""The per-symbol risk view: the 1–100 score with its reasons, recent alerts, counts by typology
and severity, the worst severity.

The score is `tapewatch.risk`'s, as `tapewatch risk` prints it, computed at the
moment of the request over the score's own window; the counts cover `since`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field
from sqlalchemy import Engine, func, select

from tapewatch.api.alert_view import AlertItem, alert_page
from tapewatch.config import RiskSettings
from tapewatch.io.lake import Lake
from tapewatch.risk.bars import last_bar_signals
from tapewatch.risk.evidence import symbol_risk
from tapewatch.risk.score import Reason
from tapewatch.store.alert_store import ALERTS, alert_conditions
from tapewatch.store.models import SEVERITIES

RECENT = 20


class Count(BaseModel):
    """How many alerts of one typology and severity."""

    typology: str
    severity: str
    alerts: int


class RiskView(BaseModel):
    """How much manipulation has been seen on one venue/symbol."""

    venue: str
    symbol: str
    since: datetime | None = Field(description="counts cover alerts detected from here on (null: all)")
    alerts: int = Field(description="alerts in the period")
    open_alerts: int = Field(description="of which not closed yet")
    highest_severity: str | None = Field(description="the worst severity seen (null: no alerts)")
    counts: list[Count] = Field(description="alerts by typology and severity, largest first")
    recent: list[AlertItem] = Field(description=f"the {RECENT} most recent alerts")
    score: int = Field(ge=1, le=100, description="1–100 risk score now (1: nothing against it)")
    reasons: list[Reason] = Field(
        description="why, largest first, each with the score points it accounts for"
    )


def risk_view(
    engine: Engine,
    venue: str,
    symbol: str,
    settings: RiskSettings,
    lake: Lake | None = None,
    since: datetime | None = None,
) -> RiskView:
    """The risk view of one venue/symbol: the score now, and counts of alerts detected since `since`
    (all when None)."""
    scored = symbol_risk(engine, venue, symbol, datetime.now(UTC), settings, lake, last_bar_signals)
    counts = _counts(engine, venue, symbol, since)
    total = sum(count.alerts for count in counts)
    worst = max((count.severity for count in counts), key=_severity_rank, default=None)
    recent = alert_page(engine, limit=RECENT, offset=0, venue=venue, symbol=symbol, since=since)
    return RiskView(
        venue=venue,
        symbol=symbol,
        since=since,
        alerts=total,
        open_alerts=total - _closed(engine, venue, symbol, since),
        highest_severity=worst,
        counts=counts,
        recent=recent,
        score=scored.score,
        reasons=scored.reasons,
    )


def _severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


def _where(venue: str, symbol: str, since: datetime | None) -> list:
    return alert_conditions(venue=venue, symbol=symbol, since=since)


def _counts(engine: Engine, venue: str, symbol: str, since: datetime | None) -> list[Count]:
    n = func.count().label("alerts")
    query = (
        select(ALERTS.c.typology, ALERTS.c.severity, n)
        .where(*_where(venue, symbol, since))
        .group_by(ALERTS.c.typology, ALERTS.c.severity)
        .order_by(n.desc(), ALERTS.c.typology, ALERTS.c.severity)
    )
    with engine.connect() as conn:
        return [Count.model_validate(row._asdict()) for row in conn.execute(query)]


def _closed(engine: Engine, venue: str, symbol: str, since: datetime | None) -> int:
    query = select(func.count()).where(*_where(venue, symbol, since), ALERTS.c.status == "closed")
    with engine.connect() as conn:
        return conn.execute(query).scalar_one()
