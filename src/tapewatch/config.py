"""Every threshold of every detector, with its default, in one place.

Values come from (highest first): environment variables `TAPEWATCH_<SECTION>__<FIELD>`,
the TOML file (`--config`, or `TAPEWATCH_CONFIG`, or `./tapewatch.toml` when present),
then the defaults below. Detectors receive their section and never hard-code a number.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError
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
    """Pump onset on trades: a burst of many distinct taker orders, mostly buys, lifting the price.

    Telegram pumps start with hundreds of members market-buying within seconds of the
    announcement; an illiquid coin that trades a few times a minute then sees tens of
    taker orders a second. Counting distinct taker orders (trades sharing a timestamp
    and side are one order sweeping several levels — La Morgia et al.'s "rush orders")
    rather than trades keeps one large order from looking like a crowd.
    """

    window_s: float = Field(3.0, gt=0, description="burst window: the last N seconds up to each order")
    baseline_h: float = Field(
        3.0, gt=0, description="trailing window that defines the symbol's normal rate and price"
    )
    warmup_h: float = Field(1.0, ge=0, description="no decision until a symbol has this much history")
    min_orders: int = Field(20, ge=1, description="taker orders in the burst window")
    min_rate_ratio: float = Field(100.0, gt=0, description="burst order rate / baseline order rate")
    min_price_rise: float = Field(0.03, ge=0, description="max price in the burst / baseline mean price − 1")
    min_buy_share: float = Field(
        0.5, ge=0, le=1, description="share of the burst's taker orders that are buys"
    )
    big_move_orders: int = Field(
        8, ge=1, description="fewer orders suffice when they lift the price by big_move_price_rise"
    )
    big_move_price_rise: float = Field(0.15, ge=0, description="price rise that lets big_move_orders suffice")
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
