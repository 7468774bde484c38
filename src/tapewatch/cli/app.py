"""The `tapewatch` command: thin wrappers that parse options and call into the package.

Alerts go to stdout (or --output); progress, summaries and errors go to stderr, so
`tapewatch detect … | jq` always sees clean JSON lines. A user error is one line on
stderr and exit code 2.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from tapewatch import __version__
from tapewatch.cli.options import ConfigOption
from tapewatch.cli.summary import wide_console
from tapewatch.cli.terminal import err, progress_bar
from tapewatch.errors import InputError, TapewatchError

DETECTOR_HELP = (
    "Run only these detectors (repeatable). Default: all but the opt-in ones (kamps_kleinberg, "
    "isolation_forest, forecast_residual, wash_public, spoofing_l2, and pump_model, which needs a model "
    "file: [pump_model] model, or detect's --model); the candle anomaly rules only when the input holds "
    "candles."
)
"""Written out rather than read from the registry, which would import every detector at start-up; a test
keeps it in step with `registry.OPT_IN`."""

app = typer.Typer(
    name="tapewatch",
    help="Market-manipulation surveillance: pump-and-dumps, wash trading, spoofing, anomalies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


F = TypeVar("F", bound=Callable[..., Any])


def user_errors(func: F) -> F:
    """Turn a TapewatchError into one line on stderr and exit code 2, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TapewatchError as exc:
            err.print("[bold red]error:[/] ", end="")
            err.print(
                str(exc), markup=False, highlight=False, soft_wrap=True
            )  # file names may hold [brackets]
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tapewatch {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Tapewatch watches markets for manipulation and explains every alert."""


@app.command()
@user_errors
def detect(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Files, directories or globs of trades, bars, L3 order events or L2 book updates "
            "(with --engine spark also a lake's URL, e.g. s3://bucket/lake)."
        ),
    ],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="auto, ccxt-trades, binance-trades, binance-aggtrades, binance-klines, ohlcv, "
            "l3-orders, l2-book, binance-depth or parquet.",
        ),
    ] = "auto",
    venue: Annotated[str | None, typer.Option(help="Venue name for inputs that do not carry one.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write alerts here instead of stdout.")
    ] = None,
    dead_letter: Annotated[
        Path | None, typer.Option(help="Where rejected rows go (default: next to the output).")
    ] = None,
    detector: Annotated[list[str] | None, typer.Option(help=DETECTOR_HELP)] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            help="Also run a trained pump model (`tapewatch train pump`); alerts carry its probability."
        ),
    ] = None,
    partitions: Annotated[
        int,
        typer.Option(
            min=0,
            help="Detect in this many partitions of symbols, one at a time (0: only when the input would "
            "need more than [batch] memory_gib).",
        ),
    ] = 0,
    engine: Annotated[
        str,
        typer.Option(help="local (this process) or spark (the same detectors on Spark; the [spark] extra)."),
    ] = "local",
    master: Annotated[
        str | None, typer.Option(help="With --engine spark: the Spark master URL (default local[*]).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Detect manipulation in files; write alerts as JSON lines."""
    from tapewatch.cli.summary import fail_if_set_aside, print_detect_summary
    from tapewatch.config import load_settings
    from tapewatch.io.alert_lines import write_alerts
    from tapewatch.io.deadletter import check_writable
    from tapewatch.pipeline.batch import default_dead_letter_path, detect_files

    if output is not None:
        check_writable(output, "--output")  # before a long read, not after it
    if engine not in ("local", "spark"):
        raise TapewatchError(f"--engine '{engine}': expected local or spark")
    if engine == "local" and master is not None:
        raise TapewatchError("--master needs --engine spark")
    if engine == "spark" and partitions:
        raise TapewatchError("--partitions is the local engine's; Spark partitions by symbol itself")
    if engine == "local" and any("://" in item for item in inputs):
        raise TapewatchError("a lake URL needs --engine spark (the local engine reads files and folders)")
    settings = load_settings(config)
    asked = {
        "fmt": fmt,
        "venue": venue,
        "detectors": detector,
        "model": model,
        "dead_letter": dead_letter or default_dead_letter_path(output),
    }
    check_writable(asked["dead_letter"], "--dead-letter")  # before the progress bar and the read
    if engine == "spark":
        from tapewatch.extras import require

        require("spark", "pyspark", command="detect --engine spark")
        from tapewatch.pipeline.spark import detect_files_on_spark

        run = detect_files_on_spark(inputs, settings, **asked, master=master)
    else:
        with progress_bar() as progress:
            run = detect_files(inputs, settings, **asked, partitions=partitions or None, progress=progress)
    write_alerts(run.alerts, output)
    print_detect_summary(err, run)
    fail_if_set_aside(run.tally, "the alerts are those of the other files")


@app.command()
@user_errors
def evaluate(
    alerts: Annotated[Path, typer.Option(help="Alerts as JSON lines (the output of `tapewatch detect`).")],
    labels: Annotated[Path, typer.Option(help="CSV of labelled events: a symbol and an event-time column.")],
    symbol_col: Annotated[
        str | None, typer.Option(help="Symbol column in the labels (default: symbol or pair).")
    ] = None,
    time_col: Annotated[
        str | None,
        typer.Option(
            help="Event-time column (default: event_time, announced_at_utc, ts, time or timestamp)."
        ),
    ] = None,
    before: Annotated[str, typer.Option(help="An alert this long before an event still catches it.")] = "2m",
    after: Annotated[str, typer.Option(help="An alert up to this long after an event catches it.")] = "5m",
    data: Annotated[
        list[str] | None,
        typer.Option(
            help="The market data the alerts came from, to count "
            "symbol-days for the false-alarm rate (repeatable)."
        ),
    ] = None,
    symbol_days: Annotated[
        float | None, typer.Option(help="Symbol-days observed, instead of --data.")
    ] = None,
    max_gap: Annotated[
        str, typer.Option(help="With --data: gaps in a symbol's data longer than this are not observed time.")
    ] = "1d",
    typology: Annotated[str | None, typer.Option(help="Only alerts of this typology.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="Format of --data files.")] = "auto",
) -> None:
    """Score alerts against labelled events (CSV, TSV or JSON): recall, precision, false alarms, delays."""
    from tapewatch.cli.summary import evaluation_table
    from tapewatch.durations import parse_duration
    from tapewatch.evaluate.scoring import (
        coverage_symbol_days,
        evaluate_alerts,
        load_alerts,
        load_labels,
    )
    from tapewatch.io.readers import read_inputs

    days = symbol_days
    if days is None and data:
        read = read_inputs(data, fmt=fmt)
        days = coverage_symbol_days(
            read.trades if read.trades.height else read.bars,
            max_gap=parse_duration(max_gap, what="--max-gap"),
        )
    report = evaluate_alerts(
        load_alerts(alerts),
        load_labels(labels, symbol_col=symbol_col, time_col=time_col),
        before=parse_duration(before, what="--before"),
        after=parse_duration(after, what="--after"),
        symbol_days=days,
        typology=typology,
    )
    wide_console().print(evaluation_table(report))


@app.command()
@user_errors
def simulate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for trades, orders and labels.")] = Path(
        "sim"
    ),
    symbols: Annotated[int, typer.Option(min=1, help="How many symbols.")] = 12,
    hours: Annotated[float, typer.Option(min=1.0, help="Length of the simulated market in hours.")] = 24.0,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same market.")] = 7,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv (ccxt trade layout).")] = "parquet",
) -> None:
    """Write a synthetic market with injected, labelled manipulations."""
    from tapewatch.sources.simulator.market import SimulationConfig, simulate_market, write_market

    if fmt not in ("parquet", "csv"):
        raise TapewatchError(f"--format '{fmt}': expected parquet or csv")
    with progress_bar() as progress:
        task = progress.add_task("simulating", total=symbols)
        market = simulate_market(
            SimulationConfig(seed=seed, symbols=symbols, hours=hours),
            on_progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    paths = write_market(market, out, fmt=fmt)
    err.print(
        f"{market.trades.height:,} trades, {market.orders.height:,} order events, "
        f"{market.labels.height} labelled manipulations → {', '.join(str(p) for p in paths.values())}"
    )


@app.command()
@user_errors
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the demo's files.")] = Path(
        "tapewatch-demo"
    ),
    symbols: Annotated[int, typer.Option(min=1, help="How many symbols to simulate.")] = 12,
    hours: Annotated[float, typer.Option(min=8.0, help="Hours of market to simulate.")] = 24.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    config: ConfigOption = None,
) -> None:
    """Simulate a market, detect, store alerts in SQLite, print a summary and chart the top alert."""
    from tapewatch.cli.summary import print_demo_summary
    from tapewatch.config import load_settings
    from tapewatch.pipeline.demo import run_demo

    with progress_bar() as progress:
        result = run_demo(
            out, load_settings(config), symbols=symbols, hours=hours, seed=seed, progress=progress
        )
    print_demo_summary(wide_console(), result)


@app.command()
@user_errors
def stream(
    inputs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Files, directories or globs to replay, as for detect (with or after --replay, so "
            "`--replay trades/*.csv.gz` works as the shell expands it).",
            show_default=False,
        ),
    ] = None,
    replay: Annotated[
        list[str] | None,
        typer.Option(
            help="Replay these files, directories or globs (trades, L3 order events or L2 book updates; "
            "candle files are for detect)."
        ),
    ] = None,
    kind: Annotated[
        str,
        typer.Option(
            help="Replay: auto, trades, orders or book (book updates are merged with the files' trades)."
        ),
    ] = "auto",
    speed: Annotated[
        str, typer.Option(help="Replay speed: max, or a multiple of real time (1, 10).")
    ] = "max",
    exchange: Annotated[
        str | None, typer.Option(help="Watch this exchange live over WebSocket (ccxt id, e.g. binance).")
    ] = None,
    symbols: Annotated[list[str] | None, typer.Option(help="Live: symbols to watch (repeatable).")] = None,
    warmup: Annotated[
        str | None,
        typer.Option(
            help="Live: history to start on (e.g. 3h; 0: none), fetched into the lake where it lacks it "
            "[default: as far back as the detectors look]."
        ),
    ] = None,
    lake: Annotated[
        str | None,
        typer.Option(help="Live: the Parquet lake for the warm-up (default: store.lake, ~/.tapewatch/lake)."),
    ] = None,
    bus: Annotated[
        str | None,
        typer.Option(
            help="Work as one of many workers on trades from a NATS JetStream bus (nats://HOST:PORT); "
            "alerts go to the bus for `tapewatch bus sink`, and also to --output / --db if given."
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="Format of --replay files.")] = "auto",
    venue: Annotated[
        str | None, typer.Option(help="Venue name for replayed files that do not carry one.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Append alerts here (JSON lines) instead of stdout.")
    ] = None,
    db: Annotated[str | None, typer.Option(help="Alert store: SQLite path or database URL.")] = None,
    store: Annotated[bool, typer.Option("--store/--no-store", help="Keep alerts in the store.")] = True,
    notify: Annotated[
        bool,
        typer.Option("--notify", help="Send each new alert through the notification rules (see notify)."),
    ] = False,
    dead_letter: Annotated[
        Path | None,
        typer.Option(
            help="Where refused and set-aside rows go (JSON lines; default: not written). With --bus, each "
            "is written when set aside: a message processed again after a takeover is written again."
        ),
    ] = None,
    detector: Annotated[list[str] | None, typer.Option(help=DETECTOR_HELP)] = None,
    config: ConfigOption = None,
) -> None:
    """Run the detectors live on a stream of trades (or order events, or book updates); alerts as JSON
    lines, follow-ups as later lines."""
    from tapewatch.config import load_settings
    from tapewatch.extras import require
    from tapewatch.pipeline.stream import open_stream, report_stream

    settings = load_settings(config)
    say = functools.partial(err.print, highlight=False)
    replay = [*(replay or []), *(inputs or [])]
    if bus is not None:
        if replay or exchange:
            raise InputError("stream: --bus is a source of its own; use it without --replay or --exchange")
        if notify:
            raise InputError(
                "stream --bus: workers do not notify; run `tapewatch bus sink --notify` once instead"
            )
        require("bus", "nats", command="stream --bus")
        from tapewatch.bus import run_worker

        worker_report = run_worker(
            settings,
            bus,
            store_alerts=store and db is not None,
            db=db,
            output=output,
            detectors=detector,
            dead_letter=dead_letter,
        )
        err.print(worker_report.summary(), highlight=False)
        return
    if exchange:
        require("live", "ccxt", command="stream --exchange")
    if notify:
        require("service", "apprise", command="stream --notify")
    job = open_stream(
        settings,
        replay=replay,
        dead_letter=dead_letter,
        speed=speed,
        exchange=exchange,
        symbols=symbols,
        fmt=fmt,
        venue=venue,
        output=output,
        db=db if store else None,
        use_store=store,
        warmup=warmup,
        lake=lake,
        notify=notify,
        kind=kind,
        detectors=detector,
        progress=progress_bar,
        say=say,
    )
    report = job.run()
    if job.tally is not None:
        from tapewatch.cli.summary import fail_if_set_aside, print_read_summary

        print_read_summary(err, job.tally, job.letters.path)
    report_stream(job, report, say)
    if job.tally is not None:
        fail_if_set_aside(job.tally, "the alerts are those of the other files")


ingest_app = typer.Typer(
    help="Bring market data into the lake and the instruments table.", no_args_is_help=True
)
app.add_typer(ingest_app, name="ingest")


bus_app = typer.Typer(
    help="Scale-out over NATS JetStream: publish trades, persist alerts, see who owns what.",
    no_args_is_help=True,
)
app.add_typer(bus_app, name="bus")
users_app = typer.Typer(help="Users and their roles (viewer, analyst, admin).", no_args_is_help=True)
app.add_typer(users_app, name="users")
keys_app = typer.Typer(help="API keys for the REST API and the console.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
train_app = typer.Typer(
    help="Train models on labelled data and save them with a model card.", no_args_is_help=True
)
app.add_typer(train_app, name="train")


def _register_subcommands() -> None:
    """The sub-command verbs live with their code; they import their heavy clients only when run."""
    from tapewatch.cli import users as service
    from tapewatch.cli.bus import bus_publish, bus_sink, bus_status
    from tapewatch.cli.exchange import ingest_crypto
    from tapewatch.cli.notify import register as register_notify
    from tapewatch.cli.risk import risk
    from tapewatch.cli.serve import serve
    from tapewatch.cli.stocks import ingest_stocks
    from tapewatch.cli.train import train_forecast, train_pump

    ingest_app.command("crypto")(user_errors(ingest_crypto))
    ingest_app.command("stocks")(user_errors(ingest_stocks))
    bus_app.command("publish")(user_errors(bus_publish))
    bus_app.command("sink")(user_errors(bus_sink))
    bus_app.command("status")(user_errors(bus_status))
    users_app.command("add")(user_errors(service.users_add))
    users_app.command("list")(user_errors(service.users_list))
    users_app.command("password")(user_errors(service.users_password))
    users_app.command("remove")(user_errors(service.users_remove))
    keys_app.command("create")(user_errors(service.keys_create))
    keys_app.command("list")(user_errors(service.keys_list))
    keys_app.command("revoke")(user_errors(service.keys_revoke))
    register_notify(app, user_errors)
    app.command("serve")(user_errors(serve))
    app.command("risk")(user_errors(risk))
    train_app.command("pump")(user_errors(train_pump))
    train_app.command("forecast")(user_errors(train_forecast))


_register_subcommands()


def run() -> None:
    """Entry point that also works as `python -m tapewatch`."""
    app(prog_name="tapewatch")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
