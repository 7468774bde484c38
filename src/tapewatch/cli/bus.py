"""`tapewatch bus publish | sink | status`: the command-line faces of the bus (options in, summary out).

Import-light like the other command modules: nats-py and the engine load only
when a command runs. Summaries and logs go to stderr, alert lines to stdout or
--output; a user error (bad file, unreachable bus) is one line and exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tapewatch.cli.options import ConfigOption
from tapewatch.cli.terminal import err
from tapewatch.extras import require

DEFAULT_URL = "nats://127.0.0.1:4222"
out = Console(soft_wrap=True)

BusOption = Annotated[
    str | None, typer.Option("--bus", help="NATS URL (default: bus.url, else nats://127.0.0.1:4222).")
]


def bus_url(bus: str | None, configured: str) -> str:
    return bus or configured or DEFAULT_URL


def bus_publish(
    inputs: Annotated[list[str], typer.Argument(help="Trade files, directories or globs (as for detect).")],
    speed: Annotated[
        str, typer.Option(help="Replay speed: max, or a multiple of real time (1, 10).")
    ] = "max",
    fmt: Annotated[str, typer.Option("--format", help="Input format (as for detect).")] = "auto",
    venue: Annotated[str | None, typer.Option(help="Venue name for inputs that do not carry one.")] = None,
    dead_letter: Annotated[
        Path | None,
        typer.Option(
            help="Where the files' refused rows go (JSON lines, as for detect; default: not written)."
        ),
    ] = None,
    end: Annotated[
        bool,
        typer.Option(
            "--end/--no-end",
            help="Mark the end of input, so workers decide what they hold (as detect does at the end).",
        ),
    ] = True,
    bus: BusOption = None,
    config: ConfigOption = None,
) -> None:
    """Replay trade files onto the bus, for `tapewatch stream --bus` workers to detect on."""
    require("bus", "nats", command="bus publish")
    from tapewatch.bus.publish import publish_files
    from tapewatch.cli.summary import fail_if_set_aside, print_read_summary
    from tapewatch.config import load_settings

    settings = load_settings(config)
    stats = publish_files(
        settings,
        bus_url(bus, settings.bus.url),
        inputs,
        speed=speed,
        fmt=fmt,
        venue=venue,
        end=end,
        dead_letter=dead_letter,
    )
    assert stats.read is not None  # files were read
    print_read_summary(err, stats.read, stats.letters.path)
    for reason, count in stats.letters.reasons.most_common():
        err.print(f"rejected {count:,}: {reason}", highlight=False)
    err.print(stats.summary(), highlight=False)
    fail_if_set_aside(stats.read, "the trades of the other files were published")


def bus_sink(
    db: Annotated[str | None, typer.Option(help="Alert store: SQLite path or database URL.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Append alerts here (JSON lines) instead of stdout.")
    ] = None,
    notify: Annotated[
        bool, typer.Option("--notify", help="Also send each new alert through the notification rules.")
    ] = False,
    bus: BusOption = None,
    config: ConfigOption = None,
) -> None:
    """Store (and print) every alert the workers publish, once; runs until Ctrl-C."""
    require("bus", "nats", command="bus sink")
    if notify:
        require("service", "apprise", command="bus sink --notify")
    from tapewatch.bus.sink import run_sink
    from tapewatch.config import load_settings

    settings = load_settings(config)
    report = run_sink(settings, bus_url(bus, settings.bus.url), db=db, output=output, notify=notify)
    err.print(report.summary(), highlight=False)


def bus_status(bus: BusOption = None, config: ConfigOption = None) -> None:
    """Partitions' owners, lag and checkpoints; workers; the trades' retention against what detectors need."""
    require("bus", "nats", command="bus status")
    from tapewatch.bus.status import bus_status as read
    from tapewatch.config import load_settings

    settings = load_settings(config)
    status = read(settings, bus_url(bus, settings.bus.url))
    table = Table("partition", "owner", "consumer", "ack floor", "lag", "checkpoint")
    for part in status.partitions:
        consumer = "yes" if part.has_consumer else "-"
        table.add_row(
            str(part.partition),
            part.owner or "-",
            consumer,
            f"{part.ack_floor:,}",
            f"{part.lag:,}",
            part.checkpoint,
        )
    out.print(table)
    for name, detail in status.workers.items():
        out.print(f"worker {name}: partitions {detail.get('partitions', [])}", highlight=False)
    err.print(status.retention_line(), highlight=False, markup=False)
    err.print(status.summary(), highlight=False)
