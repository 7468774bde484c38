"""Score alerts against labelled manipulation episodes that have a span and, often, accounts.

Pump labels are moments (an announcement), scored by `tapewatch.evaluation`;
wash trading, spoofing and layering are episodes with a start, an end and the
accounts behind them, so they are matched differently, and the rule is spelt
out once here:

- an alert *matches* a label when venue, symbol and typology are equal, their
  spans ``[start, end]`` overlap (with `slack` either side), and, when both
  name accounts, they share at least one;
- precision = matching alerts / alerts, recall = labels matched by at least
  one alert, false alarms = alerts matching no label, per symbol-day;
- labels and alerts that carry a scheme (wash trading: ``self_trade`` or
  ``round_trip``) are also scored per scheme, so a detector that finds only
  one of them cannot hide behind the other.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

import polars as pl

from tapewatch.records import TIME, Alert

DEFAULT_SLACK = timedelta(seconds=5)

_FRAME_SCHEMA: dict[str, pl.DataType] = {
    "i": pl.UInt32(),
    "typology": pl.String(),
    "scheme": pl.String(),
    "venue": pl.String(),
    "symbol": pl.String(),
    "start": TIME,
    "end": TIME,
    "accounts": pl.List(pl.String()),
}


@dataclass(frozen=True)
class EpisodeScore:
    """One typology's (or one scheme's) precision, recall and false alarms."""

    typology: str
    scheme: str | None
    labels: int
    caught: int
    alerts: int
    true_alerts: int
    symbol_days: float

    def __add__(self, other: EpisodeScore) -> EpisodeScore:
        """The two runs' counts together (several seeds, several rates): over the same span the
        symbol-days add up too."""
        return replace(
            self,
            labels=self.labels + other.labels,
            caught=self.caught + other.caught,
            alerts=self.alerts + other.alerts,
            true_alerts=self.true_alerts + other.true_alerts,
            symbol_days=self.symbol_days + other.symbol_days,
        )

    @property
    def recall(self) -> float | None:
        return self.caught / self.labels if self.labels else None

    @property
    def precision(self) -> float | None:
        return self.true_alerts / self.alerts if self.alerts else None

    @property
    def false_alarms(self) -> int:
        return self.alerts - self.true_alerts

    @property
    def false_alarms_per_symbol_day(self) -> float:
        return self.false_alarms / self.symbol_days if self.symbol_days else 0.0

    @property
    def name(self) -> str:
        return self.typology if self.scheme is None else f"{self.typology}/{self.scheme}"


def alert_accounts(alert: Alert) -> list[str]:
    """The accounts an alert names (`accounts` list or a single `account`), empty for public-data alerts."""
    accounts = alert.evidence.get("accounts")
    if accounts is None and alert.evidence.get("account") is not None:
        accounts = [alert.evidence["account"]]
    return [str(account) for account in accounts or []]


def _alert_frame(alerts: Sequence[Alert]) -> pl.DataFrame:
    rows = [
        {
            "i": i,
            "typology": alert.typology,
            "scheme": alert.evidence.get("scheme"),
            "venue": alert.venue,
            "symbol": alert.symbol,
            "start": alert.start,
            "end": alert.end,
            "accounts": alert_accounts(alert),
        }
        for i, alert in enumerate(alerts)
    ]
    return (
        pl.DataFrame(rows, schema=_FRAME_SCHEMA, orient="row") if rows else pl.DataFrame(schema=_FRAME_SCHEMA)
    )


def _label_frame(labels: pl.DataFrame) -> pl.DataFrame:
    """The simulator's LABEL_SCHEMA (accounts comma-separated, scheme inside the JSON details)."""
    schemes = [json.loads(text or "{}").get("scheme") for text in labels["details"].to_list()]
    return labels.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("i"),
        "typology",
        pl.Series("scheme", schemes, dtype=pl.String),
        "venue",
        "symbol",
        "start",
        "end",
        pl.col("accounts").fill_null("").str.split(",").list.eval(pl.element().filter(pl.element() != "")),
    )


def _matches(alerts: pl.DataFrame, labels: pl.DataFrame, slack: timedelta) -> pl.DataFrame:
    """(alert i, label i) pairs that match by the module's rule."""
    pairs = alerts.join(labels, on=["venue", "symbol", "typology"], suffix="_label")
    overlap = (pl.col("start") <= pl.col("end_label") + slack) & (
        pl.col("start_label") <= pl.col("end") + slack
    )
    shared = pl.col("accounts").list.set_intersection("accounts_label").list.len() > 0
    either_anonymous = (pl.col("accounts").list.len() == 0) | (pl.col("accounts_label").list.len() == 0)
    return pairs.filter(overlap & (shared | either_anonymous)).select("i", "i_label")


def score_episodes(
    alerts: Sequence[Alert],
    labels: pl.DataFrame,
    symbol_days: float,
    *,
    typologies: Sequence[str] | None = None,
    slack: timedelta = DEFAULT_SLACK,
) -> list[EpisodeScore]:
    """Per typology (and per scheme where labels have one): labels, caught, alerts, true alerts.

    `labels` is in the simulator's LABEL_SCHEMA; `symbol_days` is the span of the
    market scored, for the false-alarm rate; `typologies` defaults to those of the
    labels and alerts together.
    """
    alert_frame, label_frame = _alert_frame(alerts), _label_frame(labels)
    matches = _matches(alert_frame, label_frame, slack)
    names = typologies or sorted(set(alert_frame["typology"]) | set(label_frame["typology"]))
    scores = []
    for typology in names:
        label_schemes = (
            label_frame.filter(pl.col("typology") == typology)["scheme"].drop_nulls().unique().sort()
        )
        for scheme in [None, *label_schemes]:
            pick = (pl.col("typology") == typology) & (
                pl.lit(True) if scheme is None else (pl.col("scheme") == scheme).fill_null(False)
            )
            these_alerts, these_labels = alert_frame.filter(pick), label_frame.filter(pick)
            found = matches.filter(
                pl.col("i").is_in(these_alerts["i"].implode())
                & pl.col("i_label").is_in(these_labels["i"].implode())
            )
            scores.append(
                EpisodeScore(
                    typology=typology,
                    scheme=scheme,
                    labels=these_labels.height,
                    caught=found["i_label"].n_unique(),
                    alerts=these_alerts.height,
                    true_alerts=found["i"].n_unique(),
                    symbol_days=symbol_days,
                )
            )
    return scores
