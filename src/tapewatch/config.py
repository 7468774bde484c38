"""The composition root: every tunable of a run, the infrastructure sections here and each
detector family's sections from its folder (`tapewatch.detect.<family>.settings`).

Values come from (highest first): environment variables `TAPEWATCH_<SECTION>__<FIELD>`,
the TOML file (`--config`, or `TAPEWATCH_CONFIG`, or `./tapewatch.toml` when present),
then the defaults. Detectors receive their section and never hard-code a number.
"""

from __future__ import annotations

import os
import tomllib
from datetime import UTC, date, datetime, time
from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from tapewatch import validity
from tapewatch.detect.settings import DetectorSettings
from tapewatch.errors import InputError
from tapewatch.sections import Section


class RiskSettings(Section):
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


class StoreSettings(Section):
    """Where alerts, instruments and cases live, and where market data is kept."""

    db: str = Field("", description="SQLAlchemy URL or SQLite path; empty: ~/.tapewatch/tapewatch.db")
    lake: str = Field(
        "", description="Parquet lake folder or fsspec URL (s3://bucket/lake); empty: ~/.tapewatch/lake"
    )
    retry_initial_s: float = Field(
        0.5, gt=0, description="stream: first wait before saving alerts again after a database error"
    )
    retry_max_s: float = Field(30.0, gt=0, description="stream: longest wait between save attempts")


class ExchangeSettings(Section):
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
    history_settle_s: float | None = Field(
        None,
        ge=0,
        le=3600,
        description="how long after a trade the venue's REST history is taken as complete: backfills stop "
        "this far before now, gap refills wait this long; empty: the venue's figure (capabilities.py)",
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
    rate_limit_weight: int = Field(
        0, ge=0, description="REST weight allowed per window (Binance: 6000 a minute); 0: the venue's"
    )
    rate_limit_window_s: float = Field(
        0.0, ge=0, le=86_400, description="length of that window in seconds; 0: the venue's (Binance: 60)"
    )
    markets_refresh_s: float = Field(
        600.0,
        gt=0,
        le=86_400,
        description="live: how often the market list is re-read to follow halts and relistings",
    )
    ccxt_options: dict = Field(
        default_factory=dict, description="ccxt options merged over Tapewatch's defaults for the exchange"
    )
    rest_url: str = Field("", description="override of the exchange's REST base URL (tests, mirrors)")
    ws_url: str = Field("", description="override of the exchange's WebSocket base URL (tests, mirrors)")
    api_key: str = Field("", description="optional; from the environment or this file")
    secret: str = Field("", description="optional; from the environment or this file")


class StocksSettings(Section):
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


class InputSettings(Section):
    """What a row's time may be before it is a bad row, whichever way it arrives (`tapewatch.validity`)."""

    earliest: date = Field(
        date(2009, 1, 1), description="trades, order events and book updates before this day are bad rows"
    )
    earliest_bars: date = Field(
        date(1900, 1, 1), description="bars before this day are bad rows (daily index data goes back decades)"
    )
    max_future_skew_s: float = Field(
        300.0, ge=0, description="rows timed more than this after the time of checking are bad rows"
    )

    def time_bounds(self) -> validity.TimeBounds:
        """These settings as the rules take them."""
        return validity.TimeBounds(
            datetime.combine(self.earliest, time(), UTC),
            datetime.combine(self.earliest_bars, time(), UTC),
            self.max_future_skew_s,
        )


class BatchSettings(Section):
    """`tapewatch detect` on inputs larger than memory: split by symbol, one partition at a time."""

    memory_gib: float = Field(
        2.0, gt=0, description="inputs that would need more than this are detected in partitions of symbols"
    )
    spill_dir: str = Field(
        "", description="where partitions are spilled (local disk); empty: the temp folder"
    )


class StreamSettings(Section):
    """The streaming engine: micro-batches of the batch detectors on each symbol's recent tail."""

    batch_ms: int = Field(50, ge=1, description="how often pending trades are run through the detectors")
    max_batch_trades: int = Field(250_000, ge=1, description="run early when this many trades are pending")
    hold_ms: int = Field(20, ge=0, description="trades of the newest millisecond wait this long for siblings")
    max_clock_skew_s: float = Field(5.0, ge=0, description="trades this far in the future are set aside")


class BusSettings(Section):
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
        24.0,
        gt=0,
        description="trades are kept at least this long; workers raise it to what their detectors need",
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
    checkpoint_s: float = Field(
        60.0, ge=0, description="how often a partition's engine state is saved for a takeover; 0: never"
    )
    ack_wait_s: float = Field(120.0, gt=0, description="an unacknowledged message is redelivered after this")
    request_timeout_s: float = Field(5.0, gt=0, description="timeout of one publish or API request")
    retry_initial_s: float = Field(
        0.2, gt=0, description="first back-off after a failed publish, ack or save"
    )
    retry_max_s: float = Field(30.0, gt=0, description="back-off ceiling; retries go on until stopped")
    publish_inflight: int = Field(
        512, ge=1, description="publishes awaiting the server's acknowledgement at once"
    )


class ApiSettings(Section):
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
        description="an API key checked against the database is trusted this long: a revoked key "
        "or changed role applies at once on this server, within this long on others; 0: check every request "
        "(console sessions are checked on every request)",
    )
    secure_cookies: bool = Field(
        False,
        description="always mark the session cookie Secure (it already is on any HTTPS request, "
        "directly or through a trusted proxy)",
    )
    trusted_proxies: str = Field(
        "127.0.0.1",
        description="comma-separated addresses or networks whose X-Forwarded-Proto/-For headers are believed "
        "(a reverse proxy in front); '*' trusts anyone, so only behind a proxy that overwrites them",
    )
    max_body_bytes: int = Field(10_000_000, ge=1024, description="larger request bodies are refused (413)")
    list_cache_s: float = Field(
        1.0,
        ge=0,
        description="alert-list pages are served from memory this long (0: never); see api/list_cache.py",
    )


class NotifySettings(Section):
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


class Settings(DetectorSettings, BaseSettings):
    """All of Tapewatch's tunables: the detectors' sections (`DetectorSettings`), then the infrastructure's."""

    model_config = SettingsConfigDict(env_prefix="TAPEWATCH_", env_nested_delimiter="__", extra="forbid")

    risk: RiskSettings = RiskSettings()
    store: StoreSettings = StoreSettings()
    exchange: ExchangeSettings = ExchangeSettings()
    stocks: StocksSettings = StocksSettings()
    input: InputSettings = InputSettings()
    batch: BatchSettings = BatchSettings()
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
    """Load settings, naming the file and the field in a one-line error when something is wrong.

    The `[input]` time bounds become those every validity rule uses (`validity.use_time_bounds`):
    files, streams, the exchange source and the API all refuse the same rows without each caller
    passing them.
    """
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
        settings = Settings(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InputError(f"config '{source or 'environment'}': {where}: {first['msg']}") from None
    validity.use_time_bounds(settings.input.time_bounds())
    return settings
