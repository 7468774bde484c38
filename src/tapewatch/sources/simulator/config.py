"""The simulator's knobs: one frozen dataclass holding every default the synthetic market uses.

Defaults are calibrated on real Binance BTC-quoted small caps (the pump-event
dev data: 650–5,600 trades a day, median trade ≈ 0.002 BTC, log-size sd ≈ 1.8,
taker-side lag-1 autocorrelation ≈ 0.4, daily volatility 5–14 %, pumps peaking
+4…+230 % within 10 s…7 min of the announcement).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from tapewatch.errors import InputError


@dataclass(frozen=True)
class SimulationConfig:
    """Everything `simulate_market` needs; the same config always gives the same market.

    Rates of manipulations are expected counts per symbol and 24 h: each
    symbol-day draws its own Poisson count, so some days have none and some
    several, as detectors meet them in practice.
    """

    seed: int = 7
    symbols: int = 12
    """Number of instruments, named SIM01/BTC, SIM02/BTC, …"""
    venue: str = "simex"
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC)
    hours: float = 24.0

    # --- background market ---------------------------------------------------
    trades_per_day: float = 2000.0
    """Median baseline trade prints per symbol-day; each symbol draws its own around it."""
    trades_per_day_dispersion: float = 0.6
    """Log-sd of the per-symbol baseline trade rate (a few quiet coins, a few busy ones)."""
    price_range: tuple[float, float] = (2e-7, 1e-4)
    """Initial prices in BTC are log-uniform in this range (tick 1e-8 below 1e-5, else 1e-7)."""
    daily_volatility: float = 0.06
    """Median daily log-volatility of the efficient price; symbols vary around it."""
    median_trade_btc: float = 0.002
    """Median taker order notional in BTC; sizes are log-normal."""
    trade_size_sigma: float = 1.8
    """Log-sd of taker order notional (heavy right tail: whales sweep levels)."""
    round_size_share: float = 0.25
    """Share of orders whose amount is rounded to a 'nice' number (100, 250, 5000 …)."""
    hawkes_branching: float = 0.5
    """Share of taker orders triggered by earlier ones (self-excitation, clustering)."""
    side_persistence: float = 0.7
    """Probability a triggered order copies its parent's side (order splitting, herding)."""
    intraday_amplitude: float = 0.3
    """Relative amplitude of the daily activity cycle (peak ≈ 15:00 UTC, trough ≈ 03:00 UTC)."""
    regime_volatility: float = 0.5
    """Log-sd of the slow 15-minute activity regime (over-dispersion of trade counts)."""
    flurries_per_day: float = 24.0
    """Short flurries (15–120 s decay, ~8× the rate): the heavy tail of per-minute trade counts."""

    # --- participants --------------------------------------------------------
    accounts: int = 800
    """Size of the account population shared by all symbols (roles are drawn from it)."""
    pump_crowd: int = 1500
    """Extra accounts that trade only in pumps (channel members); with `accounts` they form the population."""
    zipf_exponent: float = 1.1
    """Activity of retail accounts falls off as rank^-exponent."""
    market_makers_per_symbol: int = 3
    mm_quote_interval_s: float = 20.0
    """Mean seconds between new quotes per market maker and side at the median trade rate."""
    mm_maker_share: float = 0.55
    """Share of fills where a market maker is the resting side."""
    retail_resting_ratio: float = 1.0
    """Unfilled (later cancelled) retail limit orders per retail maker order that trades."""

    # --- organic events (not manipulation: false-alarm opportunities) --------
    news_per_symbol_day: float = 0.5
    """Information shocks: the price re-prices 2–25 % with a burst of trading, and mostly stays."""
    bursts_per_symbol_day: float = 1.0
    """Volume bursts without a lasting price move (a whale working an order, a listing tweet)."""

    # --- injected manipulations ---------------------------------------------
    pumps_per_symbol_day: float = 0.25
    pump_gain_range: tuple[float, float] = (0.12, 1.5)
    """Peak price gain of a pump relative to the pre-pump price (log-normal, clipped)."""
    pump_rate_multiplier: tuple[float, float] = (20.0, 200.0)
    """Trade-print rate from the announcement to the end of the dump, relative to the symbol's
    baseline (log-uniform). Most of it lands in the first seconds: the busiest 3 s then hold
    tens of taker orders, as in real pumps (20–650 in the dev data)."""
    pump_warmup_hours: float = 6.0
    """No pump is announced this early: detectors need a baseline."""
    pump_min_gap_hours: float = 2.0
    """Minimum spacing of two pumps on the same symbol."""
    wash_groups_per_symbol_day: float = 1.0
    spoofs_per_symbol_day: float = 1.0
    """Spoofing and layering episodes together."""
    layering_share: float = 0.4
    """Share of spoof episodes that stack several orders at successive levels (layering)."""

    def __post_init__(self) -> None:
        """Reject impossible settings with a message naming the knob, before any work is done."""
        positive = {
            "symbols": self.symbols,
            "hours": self.hours,
            "trades_per_day": self.trades_per_day,
            "median_trade_btc": self.median_trade_btc,
            "daily_volatility": self.daily_volatility,
            "mm_quote_interval_s": self.mm_quote_interval_s,
        }
        for name, value in positive.items():
            if not value > 0:
                raise InputError(f"simulation option {name} must be > 0, got {value!r}")
        rates = {
            "news_per_symbol_day": self.news_per_symbol_day,
            "bursts_per_symbol_day": self.bursts_per_symbol_day,
            "pumps_per_symbol_day": self.pumps_per_symbol_day,
            "wash_groups_per_symbol_day": self.wash_groups_per_symbol_day,
            "spoofs_per_symbol_day": self.spoofs_per_symbol_day,
            "trades_per_day_dispersion": self.trades_per_day_dispersion,
            "regime_volatility": self.regime_volatility,
            "flurries_per_day": self.flurries_per_day,
            "trade_size_sigma": self.trade_size_sigma,
        }
        for name, value in rates.items():
            if value < 0:
                raise InputError(f"simulation option {name} must be ≥ 0, got {value!r}")
        shares = {
            "round_size_share": self.round_size_share,
            "side_persistence": self.side_persistence,
            "mm_maker_share": self.mm_maker_share,
            "layering_share": self.layering_share,
            "intraday_amplitude": self.intraday_amplitude,
        }
        for name, value in shares.items():
            if not 0 <= value <= 1:
                raise InputError(f"simulation option {name} must be within 0..1, got {value!r}")
        if not 0 <= self.hawkes_branching < 0.95:
            raise InputError(
                f"simulation option hawkes_branching must be within 0..0.95, got {self.hawkes_branching!r}"
            )
        if self.market_makers_per_symbol < 1:
            raise InputError("simulation option market_makers_per_symbol must be ≥ 1")
        if self.pump_crowd < 0:
            raise InputError(f"simulation option pump_crowd must be ≥ 0, got {self.pump_crowd}")
        if self.accounts < 100:
            raise InputError(
                f"simulation option accounts must be ≥ 100 (roles need room), got {self.accounts}"
            )
        for name, (low, high) in {
            "price_range": self.price_range,
            "pump_gain_range": self.pump_gain_range,
            "pump_rate_multiplier": self.pump_rate_multiplier,
        }.items():
            if not 0 < low <= high:
                raise InputError(
                    f"simulation option {name} must be (low, high) with 0 < low ≤ high, got {(low, high)!r}"
                )
        if self.start.tzinfo is None:
            raise InputError("simulation option start must be timezone-aware (UTC)")
