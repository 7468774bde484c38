"""Where a risk score's evidence comes from: the alert store, the instruments table, the lake.

One query reads every alert of the window and one every instrument, so a table
over thousands of symbols costs two round trips plus, when a lake is given, a
read of each symbol's recent bars.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import polars as pl
from sqlalchemy import Engine, select

from tapewatch.config import RiskSettings
from tapewatch.io.lake import Lake
from tapewatch.risk.score import AlertFact, Listing, RiskEvidence, RiskScore, risk_score
from tapewatch.store.alert_store import ALERTS
from tapewatch.store.models import InstrumentRow

Key = tuple[str, str]
BarSignals = Callable[[pl.DataFrame], tuple[dict[str, float], str | None]]
"""Bars of one symbol (oldest first) → robust z of the last bar's features, and its interval."""


def _alert_facts(
    engine: Engine, since: datetime, until: datetime, keys: Iterable[Key] | None = None
) -> dict[Key, list[AlertFact]]:
    query = select(
        ALERTS.c.venue,
        ALERTS.c.symbol,
        ALERTS.c.typology,
        ALERTS.c.score,
        ALERTS.c.detected_at,
        ALERTS.c.detector,
        ALERTS.c.evidence,
    ).where(ALERTS.c.detected_at >= since, ALERTS.c.detected_at <= until)
    wanted = set(keys) if keys is not None else None
    if wanted is not None:
        query = query.where(ALERTS.c.symbol.in_({symbol for _, symbol in wanted}))
    facts: dict[Key, list[AlertFact]] = defaultdict(list)
    with engine.connect() as conn:
        for venue, symbol, typology, score, detected_at, detector, evidence in conn.execute(query):
            if wanted is not None and (venue, symbol) not in wanted:
                continue
            probability = (evidence or {}).get("probability")
            facts[(venue, symbol)].append(
                AlertFact(
                    typology=typology,
                    score=score,
                    detected_at=_utc(detected_at),
                    detector=detector,
                    probability=float(probability) if isinstance(probability, int | float) else None,
                )
            )
    return facts


def _listings(engine: Engine, venue: str | None = None, symbol: str | None = None) -> dict[Key, Listing]:
    query = select(
        InstrumentRow.venue,
        InstrumentRow.symbol,
        InstrumentRow.asset_class,
        InstrumentRow.last_price,
        InstrumentRow.market_cap,
        InstrumentRow.first_seen,
    ).where(InstrumentRow.status == "listed")
    if venue is not None:
        query = query.where(InstrumentRow.venue == venue)
    if symbol is not None:
        query = query.where(InstrumentRow.symbol == symbol)
    with engine.connect() as conn:
        return {
            (row.venue, row.symbol): Listing(
                asset_class=row.asset_class,
                price=row.last_price,
                market_cap=row.market_cap,
                first_seen=_utc(row.first_seen) if row.first_seen else None,
            )
            for row in conn.execute(query)
        }


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def symbol_risk(
    engine: Engine,
    venue: str,
    symbol: str,
    at: datetime,
    settings: RiskSettings,
    lake: Lake | None = None,
    bar_signals: BarSignals | None = None,
) -> RiskScore:
    """The score of one venue/symbol at `at` from the store (and the lake's recent bars, when given)."""
    since = at - timedelta(days=settings.window_d)
    alerts = _alert_facts(engine, since, at, [(venue, symbol)]).get((venue, symbol), [])
    listing = _listings(engine, venue, symbol).get((venue, symbol), Listing())
    return risk_score(_evidence(venue, symbol, at, alerts, listing, lake, bar_signals, settings), settings)


def risk_table(
    engine: Engine,
    at: datetime,
    settings: RiskSettings,
    *,
    venue: str | None = None,
    lake: Lake | None = None,
    bar_signals: BarSignals | None = None,
) -> list[RiskScore]:
    """Every symbol with alerts in the window or a listing (optionally of one venue), highest score first."""
    since = at - timedelta(days=settings.window_d)
    alerts = _alert_facts(engine, since, at)
    listings = _listings(engine, venue)
    keys = {key for key in alerts if venue is None or key[0] == venue} | set(listings)
    scores = [
        risk_score(
            _evidence(
                key[0],
                key[1],
                at,
                alerts.get(key, []),
                listings.get(key, Listing()),
                lake,
                bar_signals,
                settings,
            ),
            settings,
        )
        for key in keys
    ]
    return sorted(scores, key=lambda score: (-score.score, -score.total_points, score.venue, score.symbol))


def _evidence(
    venue: str,
    symbol: str,
    at: datetime,
    alerts: list[AlertFact],
    listing: Listing,
    lake: Lake | None,
    bar_signals: BarSignals | None,
    settings: RiskSettings,
) -> RiskEvidence:
    evidence = RiskEvidence(venue=venue, symbol=symbol, at=at, alerts=alerts, listing=listing)
    if lake is not None and bar_signals is not None:
        start = at - timedelta(days=settings.bar_history_d)
        bars = lake.read("bars", venue=venue, symbol=symbol, start=start, end=at + timedelta(microseconds=1))
        if bars.height:
            evidence.bar_z, evidence.bar_interval = bar_signals(bars)
    return evidence
