"""The wash family's settings: `[wash_public]` and `[wash_accounts]`.

They sit beside the detectors that read them; `tapewatch.config` composes them into the
settings a run loads (TOML sections and environment variables are named there).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tapewatch.sections import Section


class WashPublicSettings(Section):
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


WASH_MAX_GROUP = 6
"""The largest ring of colluding accounts the wash detector can check (its vectorised member columns)."""


class WashAccountsSettings(Section):
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
    max_pair_lap_chance: float = Field(
        0.01,
        gt=0,
        le=0.05,
        description="round trip of two accounts: a pair with only `min_round_trips` laps still passes when "
        "they came round this unlikely quickly on the symbol's own clock (were the pair's transfers spread "
        "at random over the symbol's trades, each lap closing within as few trades as it did)",
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
