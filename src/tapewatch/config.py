"""Every threshold of every detector, with its default, in one place.

Values come from (highest first): environment variables `TAPEWATCH_<SECTION>__<FIELD>`,
the TOML file (`--config`, or `TAPEWATCH_CONFIG`, or `./tapewatch.toml` when present),
then the defaults below. Detectors receive their section and never hard-code a number.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from tapewatch.errors import InputError


class _Section(BaseModel):
    """A config section: unknown keys are an error, so a typo never silently keeps a default."""

    model_config = ConfigDict(extra="forbid")


class PumpOnsetSettings(_Section):
    """Pump onset on trades: a burst of many distinct taker orders lifting the price above its range.

    Telegram pumps start with hundreds of members market-buying within seconds of the
    announcement; an illiquid coin that trades a few times a minute then sees tens of
    taker orders a second. Counting distinct taker orders (trades sharing a timestamp
    and side are one order sweeping several levels — La Morgia et al.'s "rush orders")
    rather than trades keeps one large order from looking like a crowd. Each threshold
    is on the symbol's own scale: its order rate and its price range over the baseline
    (the `baseline_h` hours ending `window_s` before the decision). Prices are medians
    and quantiles, so one bad print can neither hide a pump nor make one. The defaults
    were chosen on the 15 earliest dev pumps (2020-01 … 2020-11) and checked on the 16
    later ones (confirm_*: the middle of the earlier pumps' plateau, 0.25–0.75 s and
    5–15 orders, where the delays are shortest and no event or false alarm changes).
    """

    window_s: float = Field(3.0, gt=0, description="burst window: the last N seconds up to each trade")
    baseline_h: float = Field(
        3.0, gt=0, description="the symbol's normal order rate and price range: the hours before the burst"
    )
    warmup_h: float = Field(1.0, ge=0, description="no decision until a symbol has this much history")
    min_orders: int = Field(20, ge=1, description="distinct taker orders (any side) in the burst window")
    confirm_window_s: float = Field(
        0.5,
        gt=0,
        description="the rise may also be confirmed by the median of only the trades of the burst's latest "
        "confirm_min_orders orders when they lie within the last N seconds, at most window_s (a crowd lifts "
        "the price before the whole window's median follows)",
    )
    confirm_min_orders: int = Field(
        8,
        ge=1,
        description="the burst's latest distinct taker orders whose trades confirm the rise, so a few "
        "prints never do",
    )
    min_rate_ratio: float = Field(
        100.0, gt=0, description="burst order rate / the symbol's order rate over the baseline"
    )
    min_price_rise: float = Field(
        0.05,
        ge=0,
        description="median trade price in the burst / the top of the baseline's price range "
        "(its range_quantile price) − 1",
    )
    range_quantile: float = Field(
        0.9,
        gt=0.5,
        lt=1,
        description="the baseline price quantile taken as the top of the symbol's normal range "
        "(a high quantile, not the max, so a few bad prints do not stretch it)",
    )
    cooldown_min: float = Field(
        30.0, ge=0, description="re-arm only after this long without a qualifying moment"
    )
    dump_window_min: float = Field(
        30.0, gt=0, description="follow-up: how long after detection to watch for the dump"
    )
    dump_retrace: float = Field(
        0.5,
        gt=0,
        le=1,
        description="follow-up: the dump is confirmed when this share of the rise is given back",
    )


class KampsKleinbergSettings(_Section):
    """Kamps & Kleinberg (2018): a candle whose price and volume both break above rolling means.

    Kept close to the paper for comparison: hourly candles, a trailing window of candles,
    and two multiplicative thresholds.
    """

    interval: str = Field(
        "1h", description="candle size built from trades (bars are used at their own interval)"
    )
    window: int = Field(12, ge=2, description="trailing candles that form the rolling means")
    price_threshold: float = Field(1.10, gt=1, description="high / rolling mean close")
    volume_threshold: float = Field(4.0, gt=1, description="volume / rolling mean volume")
    min_history: int = Field(6, ge=1, description="candles required before the first decision")


class WashPublicSettings(_Section):
    """Wash trading from public trades (Cong et al. 2023): four distribution tests per symbol-window.

    Defaults are calibrated on real Binance small caps (the pump-event dev data)
    and on clean simulated markets so that a genuine symbol-day rarely fires; see
    benchmarks/wash_public.py for the measured rates.
    """

    window_h: float = Field(24.0, gt=0, description="window length in hours, aligned to UTC midnight")
    min_trades: int = Field(500, ge=10, description="no decision on a window with fewer trades")
    min_tests: int = Field(2, ge=1, le=4, description="wash-like tests needed for an alert")
    sufficient_tests: list[Literal["benford", "round_clustering", "tail_exponent", "price_impact"]] = Field(
        default_factory=lambda: ["price_impact"],
        description="tests whose wash-like vote alerts on its own: volume that never moves the price is "
        "what fabricated volume looks like, while first digits and round sizes of genuine small caps stray "
        "far from textbook values (measured in benchmarks/wash_public.py)",
    )
    max_p_value: float = Field(
        1e-3, gt=0, lt=1, description="a test votes only when its one-sided p-value is at most this"
    )
    benford_max_mad: float = Field(
        0.05,
        gt=0,
        description="first-digit MAD vs Benford above which sizes are wash-like (Nigrini: > 0.015 is "
        "nonconformity for accounting data; real small-cap trade sizes reach 0.04)",
    )
    round_step: int = Field(
        10, ge=2, le=100, description="round sizes: 3 significant digits a multiple of this (120, 2500 …)"
    )
    round_width: int = Field(
        3, ge=1, description="neighbours: sizes within this many grid steps of a round one"
    )
    round_min_sample: int = Field(200, ge=1, description="trades at round sizes and neighbours needed")
    clustering_low: float = Field(
        1.3, gt=0, description="clustering ratio below this: no human round-number preference (bot sizes)"
    )
    clustering_high: float = Field(
        40.0, gt=0, description="clustering ratio above this: one round size repeated (a bot's fixed size)"
    )
    tail_share: float = Field(0.1, gt=0, lt=1, description="share of largest trades the Hill estimator uses")
    tail_min: int = Field(50, ge=5, description="trades needed in the tail")
    tail_low: float = Field(0.7, gt=0, description="smallest plausible tail exponent of trade notional")
    tail_high: float = Field(2.5, gt=0, description="largest plausible tail exponent of trade notional")
    bucket_s: float = Field(60.0, gt=0, description="price-impact test: bucket length in seconds")
    impact_min_buckets: int = Field(20, ge=2, description="flat and moving buckets needed, each")
    impact_min_auc: float = Field(
        0.6,
        gt=0.5,
        lt=1,
        description="P(flat bucket's volume > moving bucket's) at or above which volume lacks price impact",
    )

    @model_validator(mode="after")
    def _ranges(self) -> WashPublicSettings:
        if not self.clustering_low < self.clustering_high or not self.tail_low < self.tail_high:
            raise ValueError("clustering_low < clustering_high and tail_low < tail_high are required")
        return self


class SpoofingL3Settings(_Section):
    """Spoofing and layering on L3 order events (account ids and order ids) and trades naming accounts."""

    baseline_min: float = Field(
        60.0,
        gt=0,
        description="trailing window of the symbol's typical order, and of the account's typical execution "
        "and how often it executes",
    )
    min_baseline_orders: int = Field(
        20,
        ge=1,
        description="orders the symbol's trailing baseline must hold before an order is judged against it "
        "(a partial baseline is causal; a handful of orders is not a typical size)",
    )
    min_book_ratio: float = Field(
        2.0,
        gt=0,
        description="an episode's largest order: notional / the symbol's typical order notional (geometric mean)",
    )
    min_layer_ratio: float = Field(
        1.2,
        gt=0,
        description="every order of an episode: notional / the symbol's typical order notional (the deeper "
        "layers of a stack are often smaller)",
    )
    max_life_s: float = Field(
        60.0,
        gt=0,
        description="spoof orders are cancelled within this many seconds of placement (bait is pulled "
        "within seconds; honest big orders are pulled quickly too: how close the pull sits to the "
        "account's own execution, against chance, is what tells them apart)",
    )
    max_episode_s: float = Field(
        120.0, gt=0, description="longest span of one episode (first placement to last cancel)"
    )
    max_fill_ratio: float = Field(
        0.1, ge=0, le=1, description="filled share of the episode's large orders, at most"
    )
    cancel_after_exec_s: float = Field(
        30.0,
        gt=0,
        description="an execution while the orders rest ties the episode when the first cancel after it "
        "follows within this many seconds (a wide net: `max_chance` judges how close is close)",
    )
    exec_after_cancel_s: float = Field(
        30.0,
        ge=0,
        description="an opposite execution this many seconds at most after the last cancel also ties the "
        "episode (pulled first, then traded the other way); 0 turns this off",
    )
    book_window_min: float = Field(
        10.0, gt=0, description="the touch is rebuilt from orders placed within this many minutes"
    )
    max_depth_ahead: float = Field(
        4.0,
        ge=0,
        description="others' displayed amount resting at better prices than the episode's nearest order, "
        "at most this many times the episode's own amount (the bait is at least a fifth of the book from "
        "the touch to its price): bait near the touch stands out in the book, an order behind a wall of "
        "others' orders presses on nothing. Judged on the book itself, not on a count of levels, which "
        "a book of many small orders fills at once",
    )
    min_layers: int = Field(
        3, ge=2, description="orders resting at once that, over several levels, make it layering"
    )
    warmup_min: float = Field(
        15.0,
        ge=0,
        description="no decision until a symbol has this much history: sizes can be judged on a partial "
        "baseline (`min_baseline_orders`), but an account's pattern of tied cancels cannot",
    )
    pattern_min: float = Field(
        60.0, gt=0, description="trailing window of the account's large quick cancels judged together"
    )
    timing_floor_s: float = Field(
        1.0,
        gt=0,
        description="an opposite execution closer to the pull than this is judged as this close "
        "(timestamps and reactions are not finer than that)",
    )
    recent_min: float = Field(
        10.0,
        gt=0,
        description="the share of the account's time near its executions is also measured over "
        "this recent stretch, and the larger share counts: an account busy right now (a pump, a burst) "
        "sits next to its executions by chance more often than its last hour shows",
    )
    max_chance: float = Field(
        0.02,
        gt=0,
        le=1,
        description="how likely chance alone gives the account's pattern to any of the symbol's accounts "
        "judged that hour, at most: its pulls landing as close to its opposite executions as they did (a "
        "pull is that close by chance as often as the account's own recent time is to one of its "
        "executions, on either side: an account trading both ways re-prices after every fill), over its "
        "recent large quick cancels (untied ones lower the evidence, none vetoes it), times the accounts "
        "with spoof-shaped episodes on the symbol over `pattern_min` that could have reached this bound "
        "(Bonferroni with Tarone's count). A market maker trading both sides all day ties its pulls to "
        "executions by chance, and among a hundred traders pulling big orders one ties a pull by chance "
        "every hour; a spoofer ties them on purpose",
    )


class SpoofingL2Settings(_Section):
    """Spoofing and layering on public L2 book updates and trades (no account ids: low confidence)."""

    baseline_min: float = Field(
        60.0, gt=0, description="trailing window of the typical size added near the touch on each side"
    )
    level_memory_min: float = Field(
        30.0,
        gt=0,
        description="a level not updated this recently counts as empty, so a stream's tail reads the book "
        "like the batch",
    )
    near_levels: int = Field(
        5,
        ge=1,
        description="an addition is near the touch with fewer better levels than this on its side; the "
        "imbalance compares the depth of this many best levels per side",
    )
    min_add_ratio: float = Field(
        2.0,
        gt=0,
        description="an addition / the typical addition near the touch on its side (geometric mean)",
    )
    min_removed_share: float = Field(
        0.8,
        gt=0,
        le=1,
        description="one decrease of the level removes at least this share of the addition, and prints at "
        "its price took at most the rest (pulled, not traded)",
    )
    max_life_s: float = Field(60.0, gt=0, description="the addition is pulled within this many seconds")
    max_cycle_s: float = Field(120.0, gt=0, description="longest span of one cycle of overlapping additions")
    min_far_prints: int = Field(
        3,
        ge=1,
        description="prints on the far side of the book (buys for a bid addition) while an addition rests",
    )
    cancel_after_exec_s: float = Field(
        3.0, gt=0, description="an addition is pulled within this many seconds of the last far-side print"
    )
    min_swing: float = Field(
        0.2,
        gt=0,
        le=2,
        description="the top-level imbalance toward the cycle's side rises at least this much when the "
        "additions appear and falls at least this much once they are pulled (imbalance in -1…1)",
    )
    mirror_pad_s: float = Field(
        1.0,
        ge=0,
        description="a large addition on the other side within this many seconds of an addition marks "
        "two-sided (market-maker) quoting: it does not count",
    )
    min_repeats: int = Field(
        4, ge=1, description="pulled additions in qualifying cycles on one side within the repeat window"
    )
    repeat_window_min: float = Field(10.0, gt=0, description="window in which the cycles must repeat")
    min_layers: int = Field(
        3, ge=2, description="distinct price levels in one cycle that make it layering rather than spoofing"
    )
    warmup_min: float = Field(15.0, ge=0, description="no decision until a symbol has this much history")
    max_score: float = Field(
        0.6, gt=0, le=1, description="score ceiling: without account ids the pattern is circumstantial"
    )


WASH_MAX_GROUP = 6
"""The largest ring of colluding accounts the wash detector can check (its vectorised member columns)."""


class WashAccountsSettings(_Section):
    """Wash trading from account ids: self-trades beyond chance and round trips whose positions net out.

    Upper bounds keep the cost bounded at the loosest allowed values (see the detector's module docstring).
    """

    window_min: float = Field(
        60.0, gt=0, le=240, description="trailing window over which a group's trades must net out"
    )
    net_tolerance: float = Field(
        0.01,
        ge=0,
        le=0.05,
        description="round trip: each member's |bought − sold| / (bought + sold) at most this",
    )
    min_edge_trades: int = Field(
        2, ge=2, description="round trip: transfers on every link of the ring within the window (repeatedly)"
    )
    min_trades: int = Field(4, ge=2, description="round trip: transfers among the group within the window")
    volume_share_scale: float = Field(
        0.02,
        gt=0,
        le=1,
        description="score only, never a gate: the group's share of the symbol's volume in the window at "
        "which that share neither raises nor lowers the score",
    )
    max_group: int = Field(
        6, ge=2, le=WASH_MAX_GROUP, description="largest ring of colluding accounts looked for"
    )
    max_ring_counterparties: int = Field(
        5,
        ge=2,
        le=10,
        description="cost bound, rings of 3+: an account with more distinct counterparties in the grid window "
        "before the checked one is a hub (market maker, busy trader); a ring may hold one hub, as through "
        "two or more the cycles multiply by thousands (two-account round trips are checked whatever the count)",
    )
    min_round_trips: int = Field(
        2,
        ge=2,
        description="round trip: laps before the moment in which every member traded and came back to even",
    )
    min_pair_round_trips: int = Field(
        3,
        ge=2,
        description="round trip of two accounts: laps as above; a pair trading back and forth in common sizes "
        "comes back to even by chance far more often than a ring of three or more passes one quantity round",
    )
    max_lap_legs: int = Field(
        2,
        ge=1,
        le=4,
        description="round trip: transfers per member in one lap at most (1: each member passes the asset on "
        "in one trade; 2 allows a leg split in two)",
    )
    min_self_trades: int = Field(2, ge=2, description="self-trades of one account within the window")
    max_self_chance: float = Field(
        1e-4,
        gt=0,
        le=0.01,
        description="self-trades: at most this probability of as many self-trades in the window by chance, "
        "were the account's own buys and sells there matched at random against the symbol's trades "
        "(Poisson, mean buys × sells / trades): a busy account self-matches now and then, a washer far more",
    )
    cooldown_min: float = Field(
        60.0,
        ge=10,
        description="one alert per scheme: a group re-arms after this long without a qualifying trade",
    )
    followup_h: float = Field(
        6.0, ge=0, description="follow-up: the group's trades are gathered until this long after detection"
    )
    max_trade_ids: int = Field(
        50,
        ge=0,
        le=1000,
        description="trade ids listed in evidence and follow-up (the count is always given)",
    )


class PumpFeatureSettings(_Section):
    """How chunks are cut and how far back each chunk is compared; stored in the model card."""

    chunk_s: float = Field(25.0, gt=0, description="chunk length in seconds (La Morgia: 5, 15 or 25)")
    windows_h: list[float] = Field(
        [1.0, 6.0], min_length=1, description="rolling windows (hours) the chunk is compared with"
    )

    @field_validator("windows_h")
    @classmethod
    def _positive_sorted(cls, windows: list[float]) -> list[float]:
        if any(w <= 0 for w in windows):
            raise ValueError("every window must be positive")
        return sorted(windows)


class PumpLabelSettings(_Section):
    """Which chunks around a labelled pump are positives, which are left out (see the module docstring)."""

    pump_window_s: float = Field(60.0, gt=0, description="chunks overlapping [onset, onset + this) are pumps")
    ignore_before_s: float = Field(
        120.0, ge=0, description="unlabelled from this long before the announcement to the onset"
    )
    ignore_after_min: float = Field(
        30.0, ge=0, description="unlabelled after the pump window up to this long after the onset"
    )


class PumpTrainSettings(_Section):
    """Everything `train_pump_model` decides with; the card records it."""

    features: PumpFeatureSettings = Field(default_factory=PumpFeatureSettings)
    labels: PumpLabelSettings = Field(default_factory=PumpLabelSettings)
    test_share: float = Field(1 / 3, ge=0, lt=1, description="latest events held out as the test")
    validation_share: float = Field(
        0.25, gt=0, lt=1, description="latest training events that choose the rounds and the threshold"
    )
    max_rounds: int = Field(400, ge=1, description="boosting rounds at most (early stopping on validation)")
    early_stopping_rounds: int = Field(
        50, ge=1, description="stop when this many rounds bring no gain on the validation part"
    )
    learning_rate: float = Field(0.05, gt=0, description="LightGBM shrinkage per round")
    num_leaves: int = Field(15, ge=2, description="LightGBM leaves per tree (small: few pumps to learn from)")
    min_data_in_leaf: int = Field(20, ge=1, description="LightGBM: chunks a leaf needs at least")
    feature_fraction: float = Field(0.8, gt=0, le=1, description="LightGBM: share of features each tree sees")
    seed: int = Field(0, description="LightGBM's seed: the same data and seed give the same model")


class PumpModelSettings(_Section):
    """The classifier detector's own knobs; the features and threshold come with the model file."""

    model: Path | None = Field(
        None,
        description="the trained model file (`tapewatch train pump`) the pump_model detector loads; "
        "pump_model runs only when named and this is set (`detect --model PATH` sets it)",
    )
    warmup_h: float = Field(1.0, ge=0, description="no decision until a symbol has this much history")
    cooldown_min: float = Field(
        30.0, ge=0, description="re-arm only after this long without a chunk at or above the threshold"
    )
    top_features: int = Field(5, ge=0, description="how many of the strongest features the evidence lists")


class BarBaselineSettings(_Section):
    """What every bar anomaly detector shares: the candle size and the trailing baseline.

    Thresholds are robust z-scores, which are scale-free: each series is measured in
    units of its own recent variability, on relative or log scales, so the same
    defaults hold for minute crypto candles and daily index candles alike: measured on
    hourly BTC 2021 and daily S&P 500 / NASDAQ 1999–2018 (benchmarks/bar_anomalies.py),
    each detector alerts on under 0.75 % of candles and the three together on under 1 %.
    A window of 100 candles is four days of hours or five months of days: long enough
    for stable quartiles, short enough to follow a change of regime.
    """

    interval: str = Field(
        "1h", description="candle size built from trades (bars are used at their own interval)"
    )
    window: int = Field(
        100, ge=5, description="trailing candles (the current one excluded) that form the baseline"
    )
    min_history: int = Field(
        30, ge=5, description="candles of baseline a feature needs before its first decision"
    )


class AmplitudeAnomalySettings(BarBaselineSettings):
    """A candle's body or range far wider than the symbol's usual candles at that interval.

    The range threshold is lower than the body's because log ranges have thin tails
    (the 99.5th percentile of their z is 3.1–3.8 on hourly BTC and daily indices) while
    bodies are heavy-tailed like returns (4.7–6.1).
    """

    body_threshold: float = Field(6.0, gt=0, description="|robust z| of (close − open) / open")
    range_threshold: float = Field(4.0, gt=0, description="robust z of log((high − low) / open)")
    min_body_scale: float = Field(
        0.0005,
        gt=0,
        description="least scale of the relative body: a move of a few basis points is never an anomaly",
    )
    min_range_scale: float = Field(
        0.05, gt=0, description="least scale of the log range (5 %), for series whose range never varied"
    )


class VolumeAnomalySettings(BarBaselineSettings):
    """A candle's volume far above the symbol's usual volume, on a log scale.

    The 99.5th percentile of the z is 3.3 on hourly BTC and 4.4–4.7 on daily indices
    (index rebalancing and option-expiry days); 5 leaves those as the rare alerts.
    """

    threshold: float = Field(5.0, gt=0, description="robust z of log(volume), upward only")
    min_scale: float = Field(
        0.05, gt=0, description="least scale of log volume (5 %), for series whose volume never varied"
    )


class PriceAnomalySettings(BarBaselineSettings):
    """A return or an opening gap far outside the symbol's usual moves.

    In a market that never closes (crypto) the open equals the previous close to a tick,
    and old index data repeats the previous close as the open, so gaps have almost no
    spread of their own; their scale is floored at a share of the return scale, so that
    only a gap that is large as a move counts. Returns' 99.5th percentile z is 5.0–6.0
    on hourly BTC and daily indices, hence 6.
    """

    return_threshold: float = Field(6.0, gt=0, description="|robust z| of log(close / previous close)")
    gap_threshold: float = Field(6.0, gt=0, description="|robust z| of open / previous close − 1")
    min_return_scale: float = Field(
        0.0005,
        gt=0,
        description="least scale of returns: a move of a few basis points is never an anomaly",
    )
    gap_scale_share: float = Field(
        0.25, gt=0, description="least scale of gaps, as a share of the return scale"
    )


class ForecasterSettings(_Section):
    """The model that predicts a bar's high, low and close from the bars before it."""

    kind: Literal["gbm", "lstm"] = Field(
        "gbm", description="gbm: LightGBM on lag features (CPU, fast); lstm: PyTorch, needs tapewatch[deep]"
    )
    lags: int = Field(5, ge=1, description="previous bars whose return, range and volume are the inputs")
    baseline_window: int = Field(
        20, ge=2, description="trailing bars whose median volume and range are the bar's baselines"
    )
    gbm_trees: int = Field(50, ge=1, description="gbm: boosting rounds per target")
    gbm_learning_rate: float = Field(0.1, gt=0, le=1, description="gbm: shrinkage per round")
    gbm_leaves: int = Field(15, ge=2, description="gbm: leaves per tree")
    gbm_min_leaf: int = Field(20, ge=1, description="gbm: fewest training bars in a leaf")
    lstm_hidden: int = Field(16, ge=1, le=32, description="lstm: hidden units of its one layer")
    lstm_epochs: int = Field(60, ge=1, description="lstm: full-batch training epochs (bounds the fit time)")
    lstm_learning_rate: float = Field(0.02, gt=0, description="lstm: Adam step size")
    seed: int = Field(0, description="random seed of every fit, so refits are reproducible")


# -- features ------------------------------------------------------------------------------------


class ForecastResidualSettings(_Section):
    """Forecast each bar's high, low and close; alert when the miss is extreme for this market's own misses."""

    interval: str = Field(
        "1h", description="candle size built from trades (bars are used at their own interval)"
    )
    forecaster: ForecasterSettings = Field(
        default_factory=ForecasterSettings, description="the model and its lag features"
    )
    train_bars: int = Field(500, ge=10, description="trailing bars before a refit moment that a fit reads")
    min_train_bars: int = Field(200, ge=10, description="no forecast before a fit has this many usable bars")
    refit_bars: int = Field(
        250, ge=1, description="refit every this many candle intervals of calendar time, aligned to the epoch"
    )
    calibration_bars: int = Field(
        250, ge=10, description="previous bars whose out-of-sample residuals calibrate the threshold"
    )
    min_calibration_bars: int = Field(
        50, ge=5, description="no decision before this many past residuals are available"
    )
    threshold_z: float = Field(
        6.0, gt=0, description="alert when a residual is this many robust (MAD) deviations from the past ones"
    )


class IsolationForestSettings(_Section):
    """Isolation Forest on bar features, refitted on a trailing window at fixed moments."""

    interval: str = Field(
        "1h", description="candle size built from trades (bars are used at their own interval)"
    )
    scope: Literal["symbol", "universe"] = Field(
        "symbol", description="one forest per symbol, or one per venue and candle size (batch-exact only)"
    )
    train_bars: int = Field(500, ge=10, description="trailing bars before a refit moment that a fit reads")
    min_train_bars: int = Field(200, ge=10, description="no decision before a fit has this many usable bars")
    refit_bars: int = Field(
        250, ge=1, description="refit every this many candle intervals of calendar time, aligned to the epoch"
    )
    baseline_window: int = Field(
        20, ge=2, description="trailing bars whose median volume and range are the bar's baselines"
    )
    trees: int = Field(50, ge=1, description="trees in the forest")
    max_samples: int = Field(256, ge=2, description="bars drawn to grow each tree")
    threshold_quantile: float = Field(
        0.996, gt=0, lt=1, description="alert above this quantile of the training bars' anomaly scores"
    )
    top_features: int = Field(2, ge=1, description="features named as most extreme (all of them when larger)")
    seed: int = Field(0, description="random seed of every fit, so refits are reproducible")


class RiskSettings(_Section):
    """The 1–100 risk score of a symbol: evidence points added up, then squashed.

    Each kind of evidence gives points = weight × strength (strength ≥ 0, capped), so
    more or stronger evidence never lowers the score; the total maps to
    1 + 99·(1 − e^(−total/scale)): no evidence is 1, `scale` points are 63, three
    times `scale` are 95. Weights are in points; see README "Risk score".
    """

    window_d: float = Field(7.0, gt=0, description="alerts detected this many days before the moment count")
    half_life_h: float = Field(
        48.0, gt=0, description="an alert's weight halves every this many hours since its detection"
    )
    scale: float = Field(4.0, gt=0, description="total points that give a score of 63")
    typology_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "pump_and_dump": 2.0,
            "wash_trading": 1.5,
            "spoofing": 1.5,
            "layering": 1.5,
            "social_hype": 0.8,
            "price_anomaly": 0.5,
            "volume_anomaly": 0.5,
            "amplitude_anomaly": 0.5,
        },
        description="points per alert of score 1 (fresh) by typology; other typologies get `other_weight`",
    )
    other_weight: float = Field(0.5, ge=0, description="points per alert of a typology not listed")
    typology_cap: float = Field(
        3.0, gt=0, description="a typology's alerts count at most this many fresh score-1 alerts"
    )
    pump_probability_weight: float = Field(
        2.0, ge=0, description="points at probability 1 from the trained pump model's latest alerts"
    )
    bar_z_threshold: float = Field(
        3.0, ge=0, description="robust z of the last bar's volume/return/amplitude that starts to count"
    )
    bar_z_weight: float = Field(0.25, ge=0, description="points per robust σ beyond the threshold")
    bar_z_cap: float = Field(8.0, gt=0, description="σ beyond the threshold that count at most")
    bar_history_d: float = Field(
        400.0, gt=0, description="days of the lake's bars read to judge the last bar against its history"
    )
    penny_price: float = Field(5.0, gt=0, description="a stock under this price (USD) is a penny stock")
    penny_weight: float = Field(0.5, ge=0, description="points for a penny stock")
    small_cap_usd: float = Field(
        300e6, gt=0, description="market caps below this add points, growing with each factor of 10 below"
    )
    small_cap_weight: float = Field(0.5, ge=0, description="points for a cap 100× below `small_cap_usd`")
    new_listing_days: float = Field(
        90.0, gt=0, description="instruments first seen this recently add points, more the newer"
    )
    new_listing_weight: float = Field(0.5, ge=0, description="points for a listing first seen today")


class StoreSettings(_Section):
    """Where alerts, instruments and cases live, and where market data is kept."""

    db: str = Field("", description="SQLAlchemy URL or SQLite path; empty: ~/.tapewatch/tapewatch.db")
    lake: str = Field("", description="Parquet lake folder; empty: ~/.tapewatch/lake")
    retry_initial_s: float = Field(
        0.5, gt=0, description="stream: first wait before saving alerts again after a database error"
    )
    retry_max_s: float = Field(30.0, gt=0, description="stream: longest wait between save attempts")


class ExchangeSettings(_Section):
    """Crypto exchanges through ccxt: REST backfill and WebSocket live trades.

    API keys are never needed for public market data; if given they come from the
    environment (TAPEWATCH_EXCHANGE__API_KEY / __SECRET) or this file, never from code.
    """

    exchange: str = Field("binance", description="ccxt exchange id")
    quote: str = Field("", description="only markets quoted in this asset (e.g. BTC); empty: all")
    backfill_page: int = Field(
        1000,
        ge=1,
        description="trades or candles per REST request; at most the exchange's maximum (Binance: 1000)",
    )
    backfill_window_s: float = Field(
        3600.0,
        gt=0,
        description="longest time span one trades request may ask for (Binance aggTrades: 1 hour)",
    )
    backfill_flush_rows: int = Field(
        200_000, ge=1, description="rows gathered before a lake write (each write rewrites the day's file)"
    )
    backfill_concurrency: int = Field(4, ge=1, description="symbols backfilled at the same time")
    streams_per_connection: int = Field(1024, ge=1, description="symbols per WebSocket connection")
    reconnect_initial_s: float = Field(1.0, gt=0, description="first back-off after a dropped connection")
    reconnect_max_s: float = Field(60.0, gt=0, description="back-off ceiling")
    live_batch_ms: int = Field(
        20, ge=1, description="live: messages gathered this long before they are handed on as one batch"
    )
    live_flush_s: float = Field(
        5.0, gt=0, description="ingest --live: how often live trades are written to the lake"
    )
    gap_backfill_max_s: float = Field(
        3600.0, ge=0, description="live: the longest stretch of a gap (reconnect, restart) refilled over REST"
    )
    dedup_memory: int = Field(
        100_000, ge=1, description="live: trade ids remembered per symbol to drop repeats"
    )
    book_levels: int = Field(
        100,
        ge=1,
        description="live --book: depth of the REST snapshot the book starts from (Binance: 5…5000)",
    )
    rate_limit_ms: float = Field(
        0.0,
        ge=0,
        description="spacing of REST requests in ms (ccxt's rateLimit); 0: ccxt's figure for the exchange",
    )
    ccxt_options: dict = Field(
        default_factory=dict, description="ccxt options merged over Tapewatch's defaults for the exchange"
    )
    rest_url: str = Field("", description="override of the exchange's REST base URL (tests, mirrors)")
    ws_url: str = Field("", description="override of the exchange's WebSocket base URL (tests, mirrors)")
    api_key: str = Field("", description="optional; from the environment or this file")
    secret: str = Field("", description="optional; from the environment or this file")


class StocksSettings(_Section):
    """Stock listings (NASDAQ Trader symbol directory, TSX/TSXV) and bars through yfinance."""

    penny_max_price: float = Field(5.0, gt=0, description="penny stock: last price under this (USD/CAD)")
    min_avg_volume: float = Field(0.0, ge=0, description="optional lower bound on average daily volume")
    max_market_cap: float = Field(0.0, ge=0, description="optional upper bound on market cap; 0: none")
    nasdaq_listed_url: str = Field(
        "https://www.nasdaqtrader.com/dynamic/SymDir/nasdaqlisted.txt", description="NASDAQ listings"
    )
    other_listed_url: str = Field(
        "https://www.nasdaqtrader.com/dynamic/SymDir/otherlisted.txt",
        description="NYSE, AMEX, ARCA… listings",
    )
    tsx_url: str = Field(
        "https://www.tsx.com/json/company-directory/search/tsx/%5E*",
        description="TSX company directory (JSON) URL or path; empty: skip TSX",
    )
    tsxv_url: str = Field(
        "https://www.tsx.com/json/company-directory/search/tsxv/%5E*",
        description="TSX Venture company directory (JSON) URL or path; empty: skip TSXV",
    )
    yahoo_url: str = Field(
        "",
        description="send every Yahoo request (query1/query2/fc…yahoo.com) to this base URL, path kept "
        "(tests, mirrors); empty: Yahoo itself",
    )
    http_timeout_s: float = Field(30.0, gt=0, description="timeout of one listing download")
    http_retries: int = Field(3, ge=0, description="retries of a listing download or Yahoo rate limit")
    http_backoff_s: float = Field(1.0, ge=0, description="first back-off between retries; doubles each time")
    workers: int = Field(4, ge=1, description="tickers downloaded from Yahoo at the same time")
    quote_batch: int = Field(100, ge=1, le=1500, description="symbols per Yahoo quote request (facts)")
    live_interval: str = Field("1m", description="bar size that --every polls when --interval is daily")
    prepost: bool = Field(True, description="intraday bars include pre- and post-market trading")
    market_tz: str = Field("America/New_York", description="time zone of the times below (US and TSX)")
    close_time: str = Field(
        "16:15", pattern=r"^\d{2}:\d{2}$", description="daily job: listings and daily bars, weekdays"
    )
    poll_from: str = Field("04:00", pattern=r"^\d{2}:\d{2}$", description="--every polls from this time")
    poll_until: str = Field("20:00", pattern=r"^\d{2}:\d{2}$", description="--every polls until this time")


class StreamSettings(_Section):
    """The streaming engine: micro-batches of the batch detectors on each symbol's recent tail."""

    batch_ms: int = Field(50, ge=1, description="how often pending trades are run through the detectors")
    max_batch_trades: int = Field(250_000, ge=1, description="run early when this many trades are pending")
    hold_ms: int = Field(20, ge=0, description="trades of the newest millisecond wait this long for siblings")
    max_clock_skew_s: float = Field(5.0, ge=0, description="trades this far in the future are set aside")


class BusSettings(_Section):
    """NATS JetStream for scale-out: trades per venue/symbol subject, alerts on their own stream."""

    url: str = Field("", description="nats://host:port; empty: no bus")
    trades_stream: str = Field("TAPEWATCH_TRADES", description="JetStream stream of normalised trades")
    alerts_stream: str = Field("TAPEWATCH_ALERTS", description="JetStream stream of alerts")
    partitions: int = Field(
        16, ge=1, le=4096, description="symbol partitions that workers share; fixed for a stream's life"
    )
    subject_prefix: str = Field(
        "tapewatch",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="first subject token: trades on PREFIX.trades.>, alerts on PREFIX.alerts.>",
    )
    leases_bucket: str = Field(
        "tapewatch_leases", pattern=r"^[A-Za-z0-9_-]+$", description="KV bucket of partition leases"
    )
    consumer_prefix: str = Field(
        "tapewatch",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="durable consumers are PREFIX_p<N> (one per partition) and PREFIX_sink",
    )
    trades_max_age_h: float = Field(
        24.0, gt=0, description="trades are kept this long: more than the detectors' longest lookback"
    )
    alerts_max_age_d: float = Field(30.0, gt=0, description="alerts are kept this long on the bus")
    trades_dedup_window_s: float = Field(
        300.0, gt=0, description="a trade batch republished within this window (same Nats-Msg-Id) is dropped"
    )
    alerts_dedup_window_s: float = Field(
        3600.0, gt=0, description="an alert re-emitted within this window (same Nats-Msg-Id) is dropped"
    )
    message_trades: int = Field(
        2000, ge=1, description="most trades per bus message (one symbol's trades, Arrow IPC)"
    )
    fetch_batch: int = Field(256, ge=1, description="messages a worker or the sink pulls at once")
    lease_ttl_s: float = Field(
        15.0, gt=0, description="a partition whose owner stops renewing is free after this long"
    )
    heartbeat_s: float = Field(3.0, gt=0, description="how often leases are renewed and rebalanced")
    ack_wait_s: float = Field(120.0, gt=0, description="an unacknowledged message is redelivered after this")
    request_timeout_s: float = Field(5.0, gt=0, description="timeout of one publish or API request")
    retry_initial_s: float = Field(
        0.2, gt=0, description="first back-off after a failed publish, ack or save"
    )
    retry_max_s: float = Field(30.0, gt=0, description="back-off ceiling; retries go on until stopped")
    publish_inflight: int = Field(
        512, ge=1, description="publishes awaiting the server's acknowledgement at once"
    )


class ApiSettings(_Section):
    """`tapewatch serve`: the REST + WebSocket API and the analyst console."""

    host: str = Field("127.0.0.1", description="address to listen on (0.0.0.0 for every interface)")
    port: int = Field(8400, ge=1, le=65535, description="TCP port")
    session_secret: str = Field(
        "",
        description="signs console log-in cookies; empty: a random one per start (sessions end on restart)",
    )
    feed_poll_s: float = Field(
        0.5, gt=0, description="how often new alerts are looked for, for the live feed"
    )
    feed_settle_s: float = Field(
        5.0,
        ge=0,
        description="live feed: alerts stored this long before the newest one seen are looked at again, "
        "for transactions that commit late and writers whose clocks lag",
    )
    db_pool: int = Field(
        20,
        ge=1,
        le=1000,
        description="database connections kept open for requests (as many more are opened in bursts)",
    )
    auth_cache_s: float = Field(
        2.0,
        ge=0,
        description="an API key or session checked against the database is trusted this long: a revoked key "
        "or changed role applies at once on this server, within this long on others; 0: check every request",
    )
    secure_cookies: bool = Field(
        False, description="send the console's session cookie over HTTPS only (set it when served over TLS)"
    )
    max_body_bytes: int = Field(10_000_000, ge=1024, description="larger request bodies are refused (413)")
    list_cache_s: float = Field(
        1.0,
        ge=0,
        description="alert-list pages are served from memory this long (0: never); see api/list_cache.py",
    )


class NotifySettings(_Section):
    """Notifications: routing rules live in the database; these are the delivery mechanics."""

    retries: int = Field(3, ge=0, description="further attempts after a failed delivery")
    retry_initial_s: float = Field(1.0, gt=0, description="first wait before a retry; doubles each time")
    retry_max_s: float = Field(60.0, gt=0, description="longest wait between retries")
    console_url: str = Field("", description="link target in messages, e.g. https://tapewatch.example.com")
    timeout_s: float = Field(30.0, gt=0, description="longest one delivery attempt may take")
    poll_s: float = Field(
        2.0, gt=0, description="notify run: how often the store is looked at for new alerts"
    )
    lookback_s: float = Field(
        60.0,
        ge=0,
        description="notify run: alerts stored this long before the newest one seen are looked at again, "
        "for writers whose clocks lag or whose transactions commit late",
    )


class Settings(BaseSettings):
    """All of Tapewatch's tunables."""

    model_config = SettingsConfigDict(env_prefix="TAPEWATCH_", env_nested_delimiter="__", extra="forbid")

    pump_onset: PumpOnsetSettings = PumpOnsetSettings()
    kamps_kleinberg: KampsKleinbergSettings = KampsKleinbergSettings()
    wash_public: WashPublicSettings = WashPublicSettings()
    spoofing_l3: SpoofingL3Settings = SpoofingL3Settings()
    spoofing_l2: SpoofingL2Settings = SpoofingL2Settings()
    wash_accounts: WashAccountsSettings = WashAccountsSettings()
    amplitude_anomaly: AmplitudeAnomalySettings = AmplitudeAnomalySettings()
    volume_anomaly: VolumeAnomalySettings = VolumeAnomalySettings()
    price_anomaly: PriceAnomalySettings = PriceAnomalySettings()
    pump_model: PumpModelSettings = PumpModelSettings()
    pump_train: PumpTrainSettings = PumpTrainSettings()
    isolation_forest: IsolationForestSettings = IsolationForestSettings()
    forecast_residual: ForecastResidualSettings = ForecastResidualSettings()
    risk: RiskSettings = RiskSettings()
    store: StoreSettings = StoreSettings()
    exchange: ExchangeSettings = ExchangeSettings()
    stocks: StocksSettings = StocksSettings()
    stream: StreamSettings = StreamSettings()
    bus: BusSettings = BusSettings()
    api: ApiSettings = ApiSettings()
    notify: NotifySettings = NotifySettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init data; the environment outranks it.
        return (env_settings, init_settings)


def config_path(explicit: Path | None = None) -> Path | None:
    """The config file in force: --config, else $TAPEWATCH_CONFIG, else ./tapewatch.toml if present."""
    if explicit is not None:
        return explicit
    if os.environ.get("TAPEWATCH_CONFIG"):
        return Path(os.environ["TAPEWATCH_CONFIG"])
    local = Path("tapewatch.toml")
    return local if local.is_file() else None


def load_settings(path: Path | None = None) -> Settings:
    """Load settings, naming the file and the field in a one-line error when something is wrong."""
    source = config_path(path)
    data: dict = {}
    if source is not None:
        if not source.is_file():
            raise InputError(f"config '{source}': no such file (expected a TOML file)")
        try:
            data = tomllib.loads(source.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"config '{source}': not valid TOML: {exc}") from None
    try:
        return Settings(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InputError(f"config '{source or 'environment'}': {where}: {first['msg']}") from None
