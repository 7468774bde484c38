"""Score alerts against labelled manipulation episodes that have a span and, often, accounts.

Pump labels are moments (an announcement), scored by `tapewatch.evaluate.scoring`;
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
  one of them cannot hide behind the other;
- `grade_episodes` keeps each alert's score with its match, so the same run
  can be scored at any alert-score cut (keep alerts with score ≥ cut) and a
  cut chosen on some data can be applied to other data.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

import numpy as np
import polars as pl

from tapewatch.records import TIME, Alert

DEFAULT_SLACK = timedelta(seconds=5)

_FRAME_SCHEMA: dict[str, pl.DataType] = {
    "i": pl.UInt32(),
    "typology": pl.String(),
    "score": pl.Float64(),
    "scheme": pl.String(),
    "venue": pl.String(),
    "symbol": pl.String(),
    "start": TIME,
    "end": TIME,
    "accounts": pl.List(pl.String()),
}


def episode_name(typology: str, scheme: str | None) -> str:
    """The figures' name: the typology, or typology/scheme (wash_trading/self_trade) for a scheme's."""
    return typology if scheme is None else f"{typology}/{scheme}"


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
        return episode_name(self.typology, self.scheme)


@dataclass(frozen=True)
class GradedEpisodes:
    """One typology's (or scheme's) alerts and labels, graded once: what each alert scored and whether
    it matched, and the best score among the alerts matching each label.

    The one knob applied after detection is an alert-score cut (keep alerts with
    score ≥ cut); `at` scores the run at any cut, so a cut can be chosen on some
    runs and applied to others without matching alerts to labels again.
    """

    typology: str
    scheme: str | None
    alert_scores: np.ndarray
    alert_true: np.ndarray
    """Per alert: it matches at least one label of this typology (and scheme)."""
    label_best: np.ndarray
    """Per label: the highest score of the alerts matching it, -inf when none does."""
    symbol_days: float

    def at(self, cut: float = 0.0) -> EpisodeScore:
        """The counts when only alerts with score ≥ `cut` are kept (scores are ≥ 0: cut 0 keeps all)."""
        kept = self.alert_scores >= cut
        return EpisodeScore(
            typology=self.typology,
            scheme=self.scheme,
            labels=self.label_best.size,
            caught=int((self.label_best >= cut).sum()),
            alerts=int(kept.sum()),
            true_alerts=int((kept & self.alert_true).sum()),
            symbol_days=self.symbol_days,
        )

    def __add__(self, other: GradedEpisodes) -> GradedEpisodes:
        """Both runs' alerts and labels together (symbol-days add up, as in `EpisodeScore`)."""
        return replace(
            self,
            alert_scores=np.concatenate([self.alert_scores, other.alert_scores]),
            alert_true=np.concatenate([self.alert_true, other.alert_true]),
            label_best=np.concatenate([self.label_best, other.label_best]),
            symbol_days=self.symbol_days + other.symbol_days,
        )

    @property
    def name(self) -> str:
        return episode_name(self.typology, self.scheme)

    @property
    def cuts(self) -> np.ndarray:
        """The cuts at which the counts change: 0 and every alert's score, ascending."""
        return np.unique(np.concatenate([[0.0], self.alert_scores]))


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
            "score": alert.score,
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


def grade_episodes(
    alerts: Sequence[Alert],
    labels: pl.DataFrame,
    symbol_days: float,
    *,
    typologies: Sequence[str] | None = None,
    slack: timedelta = DEFAULT_SLACK,
) -> list[GradedEpisodes]:
    """Per typology (and per scheme where labels have one): each alert's score and match, each label's
    best matching score, so that the run can be scored at any alert-score cut without matching again.

    `labels` is in the simulator's LABEL_SCHEMA; `symbol_days` is the span of the
    market scored, for the false-alarm rate; `typologies` defaults to those of the
    labels and alerts together.
    """
    alert_frame, label_frame = _alert_frame(alerts), _label_frame(labels)
    matches = _matches(alert_frame, label_frame, slack)
    names = typologies or sorted(set(alert_frame["typology"]) | set(label_frame["typology"]))
    graded = []
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
            ).join(alert_frame.select("i", "score"), on="i")
            best = these_labels.select("i").join(
                found.group_by("i_label").agg(pl.col("score").max()),
                left_on="i",
                right_on="i_label",
                how="left",
            )
            graded.append(
                GradedEpisodes(
                    typology=typology,
                    scheme=scheme,
                    alert_scores=these_alerts["score"].to_numpy(),
                    alert_true=these_alerts["i"].is_in(found["i"].implode()).to_numpy(),
                    label_best=best["score"].fill_null(-np.inf).to_numpy(),
                    symbol_days=symbol_days,
                )
            )
    return graded


def score_episodes(
    alerts: Sequence[Alert],
    labels: pl.DataFrame,
    symbol_days: float,
    *,
    typologies: Sequence[str] | None = None,
    slack: timedelta = DEFAULT_SLACK,
) -> list[EpisodeScore]:
    """Per typology (and per scheme where labels have one): labels, caught, alerts, true alerts
    (every alert counted; see `grade_episodes` for the arguments)."""
    return [
        graded.at()
        for graded in grade_episodes(alerts, labels, symbol_days, typologies=typologies, slack=slack)
    ]
