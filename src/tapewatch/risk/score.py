"""The 1–100 risk score: evidence points per kind, added, squashed, and explained.

The score must be explainable to a retail investor and defensible to a compliance
officer, so it is additive: every piece of evidence (recent alerts by typology,
the trained pump model's probability, the last bar's volume/return/amplitude,
listing facts) gives points = weight × strength, with strength ≥ 0 and capped.
The total maps to 1 + 99·(1 − e^(−total/scale)), so more or stronger evidence
never lowers the score (monotone), and each reason's share of the score is its
share of the points. Weights and caps are `RiskSettings`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from tapewatch.config import RiskSettings

TYPOLOGY_WORDS = {
    "pump_and_dump": "pump-and-dump",
    "wash_trading": "wash-trading",
    "spoofing": "spoofing",
    "layering": "layering",
    "social_hype": "social-hype",
    "price_anomaly": "price-anomaly",
    "volume_anomaly": "volume-anomaly",
    "amplitude_anomaly": "amplitude-anomaly",
}
BAR_WORDS = {"volume": "volume", "return": "price move", "amplitude": "candle body (close − open)"}


@dataclass(frozen=True)
class AlertFact:
    """What the score reads of one alert."""

    typology: str
    score: float
    detected_at: datetime
    detector: str = ""
    probability: float | None = None
    """A trained model's probability, where the alert carries one."""


@dataclass(frozen=True)
class Listing:
    """What is known of the instrument (any field may be unknown)."""

    asset_class: str | None = None
    price: float | None = None
    market_cap: float | None = None
    first_seen: datetime | None = None


@dataclass
class RiskEvidence:
    """Everything known about one venue/symbol at one moment."""

    venue: str
    symbol: str
    at: datetime
    alerts: list[AlertFact] = field(default_factory=list)
    bar_z: dict[str, float] = field(default_factory=dict)
    """Robust z of the last complete bar's volume, return and amplitude (keys of BAR_WORDS)."""
    bar_interval: str | None = None
    listing: Listing = field(default_factory=Listing)


class Reason(BaseModel):
    """One reason, in plain words, with the points it adds and its share of the score."""

    kind: str = Field(description="alerts:<typology>, pump_model, bar:<feature> or listing:<fact>")
    text: str
    points: float = Field(description="evidence points (weight × strength)")
    contribution: float = Field(
        description="score points this reason accounts for (they add up to score − 1)"
    )


class RiskScore(BaseModel):
    """A symbol's score with its reasons, largest first."""

    venue: str
    symbol: str
    at: datetime
    score: int = Field(ge=1, le=100)
    total_points: float
    reasons: list[Reason]


def risk_score(evidence: RiskEvidence, settings: RiskSettings | None = None) -> RiskScore:
    """Score one symbol from its evidence; see the module docstring for the formula."""
    s = settings or RiskSettings()
    parts = [
        *_alert_points(evidence, s),
        *_model_points(evidence, s),
        *_bar_points(evidence, s),
        *_listing_points(evidence, s),
    ]
    parts = [(kind, text, points) for kind, text, points in parts if points > 0]
    total = sum(points for _, _, points in parts)
    raw = 1 + 99 * (1 - math.exp(-total / s.scale))
    reasons = [
        Reason(
            kind=kind, text=text, points=round(points, 4), contribution=round((raw - 1) * points / total, 2)
        )
        for kind, text, points in parts
    ]
    reasons.sort(key=lambda reason: -reason.points)
    return RiskScore(
        venue=evidence.venue,
        symbol=evidence.symbol,
        at=evidence.at,
        score=min(100, max(1, round(raw))),
        total_points=round(total, 4),
        reasons=reasons,
    )


Part = tuple[str, str, float]


def _decay(age: timedelta, settings: RiskSettings) -> float:
    """An alert's weight: 1 when fresh, halving every `half_life_h` (alerts from the future count as fresh)."""
    hours = max(age.total_seconds() / 3600, 0.0)
    return 0.5 ** (hours / settings.half_life_h)


def _in_window(evidence: RiskEvidence, settings: RiskSettings) -> list[AlertFact]:
    start = evidence.at - timedelta(days=settings.window_d)
    return [alert for alert in evidence.alerts if start <= alert.detected_at <= evidence.at]


def _alert_points(evidence: RiskEvidence, s: RiskSettings) -> list[Part]:
    by_typology: dict[str, list[AlertFact]] = defaultdict(list)
    for alert in _in_window(evidence, s):
        by_typology[alert.typology].append(alert)
    parts = []
    for typology, alerts in sorted(by_typology.items()):
        strength = min(s.typology_cap, sum(a.score * _decay(evidence.at - a.detected_at, s) for a in alerts))
        weight = s.typology_weights.get(typology, s.other_weight)
        latest = max(a.detected_at for a in alerts)
        words = TYPOLOGY_WORDS.get(typology, typology.replace("_", " "))
        text = (
            f"{len(alerts)} {words} alert{'s' if len(alerts) > 1 else ''} in the last {s.window_d:g} days "
            f"(strongest {max(a.score for a in alerts):.2f}, latest {_ago(evidence.at - latest)} ago)"
        )
        parts.append((f"alerts:{typology}", text, weight * strength))
    return parts


def _model_points(evidence: RiskEvidence, s: RiskSettings) -> list[Part]:
    scored = [a for a in _in_window(evidence, s) if a.probability is not None]
    if not scored:
        return []
    best = max(scored, key=lambda a: a.probability * _decay(evidence.at - a.detected_at, s))  # type: ignore[operator]
    strength = best.probability * _decay(evidence.at - best.detected_at, s)  # type: ignore[operator]
    text = f"the trained pump model gave probability {best.probability:.2f} {_ago(evidence.at - best.detected_at)} ago"
    return [("pump_model", text, s.pump_probability_weight * strength)]


def _bar_points(evidence: RiskEvidence, s: RiskSettings) -> list[Part]:
    parts = []
    for feature, z in sorted(evidence.bar_z.items()):
        beyond = min(s.bar_z_cap, abs(z) - s.bar_z_threshold)
        if beyond <= 0 or not math.isfinite(z):
            continue
        direction = "above" if z > 0 else "below"
        bar = f"the last {evidence.bar_interval} bar" if evidence.bar_interval else "the last bar"
        text = f"{BAR_WORDS.get(feature, feature)} {abs(z):.1f} robust σ {direction} normal on {bar}"
        parts.append((f"bar:{feature}", text, s.bar_z_weight * beyond))
    return parts


def _listing_points(evidence: RiskEvidence, s: RiskSettings) -> list[Part]:
    listing, parts = evidence.listing, []
    if listing.asset_class == "stock" and listing.price is not None and 0 < listing.price < s.penny_price:
        parts.append(
            (
                "listing:penny",
                f"penny stock: last price ${listing.price:,.2f} (under ${s.penny_price:g})",
                s.penny_weight,
            )
        )
    if listing.market_cap is not None and 0 < listing.market_cap < s.small_cap_usd:
        strength = min(1.0, math.log10(s.small_cap_usd / listing.market_cap) / 2)
        text = f"small market cap: ${listing.market_cap / 1e6:,.1f}M (under ${s.small_cap_usd / 1e6:,.0f}M)"
        parts.append(("listing:market_cap", text, s.small_cap_weight * strength))
    if listing.first_seen is not None:
        age = evidence.at - listing.first_seen
        if timedelta(0) <= age < timedelta(days=s.new_listing_days):
            strength = 1 - age / timedelta(days=s.new_listing_days)
            text = f"new listing: first seen {_ago(age)} ago"
            parts.append(("listing:new", text, s.new_listing_weight * strength))
    return parts


def _ago(age: timedelta) -> str:
    seconds = max(age.total_seconds(), 0.0)
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"
