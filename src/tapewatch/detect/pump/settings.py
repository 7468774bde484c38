"""The pump family's settings: `[pump_onset]`, `[kamps_kleinberg]`, `[pump_model]` and `[pump_train]`.

They sit beside the detectors that read them; `tapewatch.config` composes them into the
settings a run loads (TOML sections and environment variables are named there).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from tapewatch.sections import Section


class PumpOnsetSettings(Section):
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


class KampsKleinbergSettings(Section):
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


class PumpFeatureSettings(Section):
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


class PumpLabelSettings(Section):
    """Which chunks around a labelled pump are positives, which are left out (see the module docstring)."""

    pump_window_s: float = Field(60.0, gt=0, description="chunks overlapping [onset, onset + this) are pumps")
    ignore_before_s: float = Field(
        120.0, ge=0, description="unlabelled from this long before the announcement to the onset"
    )
    ignore_after_min: float = Field(
        30.0, ge=0, description="unlabelled after the pump window up to this long after the onset"
    )


class PumpTrainSettings(Section):
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


class PumpModelSettings(Section):
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
