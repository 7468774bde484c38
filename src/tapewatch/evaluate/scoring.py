"""Score detectors' alerts against labelled events: recall, precision, false alarms and delays.

This is what `tapewatch evaluate` runs. The definitions are the project's targets,
so they are spelt out once here and nowhere else:

- Symbols match after normalisation (upper case, without ``/``, ``-``, ``_`` and any
  ``:SETTLE`` suffix), so ``MTH/BTC``, ``MTHBTC`` and ``mth-btc`` are one symbol.
- An event is *caught* by a detector when one of its alerts on the event's symbol
  has ``detected_at`` in ``[event_time - before, event_time + after]`` (both ends
  included). The delay is ``detected_at - event_time`` of the earliest such alert,
  negative when the detector fired before the labelled time.
- An alert is *true* when it lies in the window of at least one event on its
  symbol, otherwise it is a *false alarm*. Precision = true alerts / alerts;
  recall = caught events / events; false alarms per symbol-day divide by the
  observed span of the market data.
- An ``all detectors`` row scores the union of every detector's alerts.

Held-out scoring (`forward_folds`, `HeldOutPart`) adds two definitions, so a
figure is only ever quoted on data that did not choose the thresholds:

- A *forward fold* cuts market time at its first test event's announcement minus
  ``before``: everything earlier may choose settings, the test part runs from the
  cut to the next fold's cut (the last to the end of the data).
- On a held-out part, a *false alarm* is an alert farther than ``QUIET_MARGIN``
  (30 min) from every labelled event on its symbol — ordinary trading, not the
  pump's aftermath — per *quiet* symbol-day: the part's trading outside those
  margins (`quiet_symbol_days`).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import polars as pl
from pydantic import ValidationError

from tapewatch.durations import parse_duration
from tapewatch.errors import InputError
from tapewatch.records import TIME, Alert

__all__ = [
    "ALL_DETECTORS",
    "QUIET_MARGIN",
    "DetectorScore",
    "EvaluationReport",
    "ForwardFold",
    "HeldOutPart",
    "Span",
    "alerts_to_frame",
    "best_choice",
    "coverage_symbol_days",
    "evaluate_alerts",
    "events_in",
    "forward_folds",
    "load_alerts",
    "load_labels",
    "normalised_symbol",
    "outside_events",
    "parse_duration",  # the project's one duration parser (tapewatch.durations), re-exported for the CLI
    "quiet_symbol_days",
    "scaled_count",
]

ALL_DETECTORS = "all detectors"
"""Name of the row that merges every detector's alerts."""

DEFAULT_BEFORE = timedelta(minutes=2)
DEFAULT_AFTER = timedelta(minutes=5)
QUIET_MARGIN = timedelta(minutes=30)
"""Alerts and trading this close to a labelled event belong to the event: neither false alarms nor
ordinary trading (a pump's run-up, its dump and the crowd selling are abnormal but not false)."""

SYMBOL_COLUMNS = ("symbol", "pair")
TIME_COLUMNS = ("event_time", "announced_at_utc", "ts", "time", "timestamp")

ALERT_FRAME_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(),
    "typology": pl.String(),
    "venue": pl.String(),
    "symbol": pl.String(),
    "start": TIME,
    "end": TIME,
    "detected_at": TIME,
    "score": pl.Float64(),
    "severity": pl.String(),
    "detector": pl.String(),
}
LABEL_FRAME_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "event_time": TIME,
    "typology": pl.String(),
}
DETAIL_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "event_time": TIME,
    "detector": pl.String(),
    "caught": pl.Boolean(),
    "delay_s": pl.Float64(),
}

_MICROSECONDS_PER_DAY = 86_400 * 1_000_000
T = TypeVar("T")


# ---------------------------------------------------------------- loading


def load_alerts(path: Path) -> pl.DataFrame:
    """Read alerts as `tapewatch detect` writes them (one JSON object a line).

    Each line is validated against the Alert model, so an evaluation never
    silently scores half-read alerts: a bad line is an InputError naming the
    file and the line. Blank lines are skipped. Evidence is dropped; scoring
    needs only the columns of ALERT_FRAME_SCHEMA.
    """
    path = Path(path)
    rows = []
    for number, line in enumerate(_read_text(path, "alerts").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            alert = Alert.model_validate_json(line)
        except ValidationError as error:
            raise InputError(f"alerts '{path}': line {number}: {_first_problem(error)}") from None
        row = {name: getattr(alert, name) for name in ALERT_FRAME_SCHEMA}
        rows.append(row | {name: _as_utc(row[name]) for name in ("start", "end", "detected_at")})
    return pl.DataFrame(rows, schema=ALERT_FRAME_SCHEMA)


def load_labels(path: Path, symbol_col: str | None = None, time_col: str | None = None) -> pl.DataFrame:
    """Read labelled events into columns ``symbol``, ``event_time`` (UTC) and ``typology`` (null if absent).

    The file is CSV (TSV for ``.tsv``, a JSON array or JSON lines for ``.json`` /
    ``.jsonl``). Columns default to the first present of SYMBOL_COLUMNS and
    TIME_COLUMNS; ``time_col`` may join columns with ``+`` (``date+hour``) for
    lists that split the date and the time. Labels are few and define the
    score, so a row with no symbol or an unreadable time is an InputError
    naming the row rather than a skipped row.
    """
    path = Path(path)
    raw = _read_table(path)
    where = f"labels '{path}'"
    symbol_name = _pick_column(raw, symbol_col, SYMBOL_COLUMNS, where, "--symbol-col")
    time_names = (
        [_pick_column(raw, name, (), where, "--time-col") for name in time_col.split("+")]
        if time_col
        else [_pick_column(raw, None, TIME_COLUMNS, where, "--time-col")]
    )
    symbols = raw.get_column(symbol_name).str.strip_chars()
    times = pl.concat_str([pl.col(name).str.strip_chars() for name in time_names], separator=" ")
    time_texts = raw.select(times).to_series()
    column_label = "+".join(time_names)
    event_times = []
    for row, (symbol, text) in enumerate(zip(symbols, time_texts, strict=True), start=1):
        if not symbol:
            raise InputError(f"{where}: row {row}: empty symbol in column '{symbol_name}'")
        event_times.append(_parse_label_time(text, f"{where}: row {row} ({symbol}), column '{column_label}'"))
    typologies = raw.get_column("typology") if "typology" in raw.columns else None
    return pl.DataFrame(
        {"symbol": symbols, "event_time": pl.Series(event_times, dtype=TIME), "typology": typologies},
        schema=LABEL_FRAME_SCHEMA,
    )


def coverage_symbol_days(frame: pl.DataFrame, max_gap: timedelta | None = None) -> float:
    """Symbol-days of market data: per symbol, last minus first ``ts``, summed, in days.

    This is the denominator of false alarms per symbol-day: how much trading
    the detectors watched. It is computed as the sum of the steps between a
    symbol's consecutive timestamps, which equals last minus first; with
    ``max_gap``, steps longer than it are left out, so data made of separate
    windows (e.g. a few days around each of several pumps of one coin, months
    apart) counts the windows and not the months between them.
    """
    return _symbol_days(_market_times(frame), max_gap)


def quiet_symbol_days(
    trades: pl.DataFrame,
    labels: pl.DataFrame,
    *,
    margin: timedelta = QUIET_MARGIN,
    max_gap: timedelta | None = timedelta(days=1),
) -> float:
    """Symbol-days of ordinary trading: `coverage_symbol_days` without the time within ``margin`` of a
    labelled event on the symbol, the denominator of false alarms counted outside those margins.

    A step between consecutive trades counts only when both trades lie outside every margin, so the
    hour around a pump is left out however the trades fall in it.
    """
    times = _market_times(trades).with_row_index("_row")
    near = _near_events(times, labels, "ts", margin)
    quiet = times.join(near, on="_row", how="anti").select("_row", _quiet=pl.lit(True))
    return _symbol_days(times.join(quiet, on="_row", how="left"), max_gap)


def _market_times(frame: pl.DataFrame) -> pl.DataFrame:
    """The symbol and UTC ``ts`` of each row with a time; an InputError names missing columns."""
    missing = [name for name in ("symbol", "ts") if name not in frame.columns]
    if missing:
        raise InputError(f"market data has no column {', '.join(map(repr, missing))}; need 'symbol' and 'ts'")
    return frame.filter(pl.col("ts").is_not_null()).select("symbol", pl.col("ts").cast(TIME))


def _symbol_days(times: pl.DataFrame, max_gap: timedelta | None) -> float:
    """Sum of the steps between each symbol's consecutive times, in days; with a ``_quiet`` column, only
    steps whose both ends are quiet count."""
    counted = pl.lit(True)
    if "_quiet" in times.columns:
        quiet = pl.col("_quiet").fill_null(False)
        counted = quiet & quiet.shift(1).over("symbol").fill_null(False)
    steps = (
        times.lazy()
        .sort("symbol", "ts")
        .select(step=pl.col("ts").diff().over("symbol"), counted=counted)
        .filter("counted")
    )
    if max_gap is not None:
        steps = steps.filter(pl.col("step") <= max_gap)
    total = steps.select(pl.col("step").dt.total_microseconds().sum()).collect().item()
    return float(total or 0) / _MICROSECONDS_PER_DAY


def _read_text(path: Path, what: str) -> str:
    """The file's text, or an InputError that says why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{what} '{path}': no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{what} '{path}': cannot read it ({error})") from None


def _read_table(path: Path) -> pl.DataFrame:
    """Labels as a frame of strings, whatever the format, so every cell parses the same way."""
    text = _read_text(path, "labels")
    suffix = path.suffix.lower()
    try:
        if suffix in (".json", ".jsonl", ".ndjson"):
            records = json.loads(text) if text.lstrip().startswith("[") else _json_lines(text)
            frame = pl.DataFrame(records, infer_schema_length=None)
            return frame.select(pl.all().cast(pl.String))
        separator = "\t" if suffix == ".tsv" else ","
        return pl.read_csv(text.encode(), separator=separator, infer_schema=False)
    except (ValueError, TypeError, pl.exceptions.PolarsError) as error:
        raise InputError(f"labels '{path}': not a readable table ({str(error).splitlines()[0]})") from None


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _pick_column(
    frame: pl.DataFrame, chosen: str | None, defaults: tuple[str, ...], where: str, option: str
) -> str:
    """The column the user named, or the first default present; an InputError listing the columns otherwise."""
    columns = ", ".join(frame.columns)
    if chosen is not None:
        if chosen not in frame.columns:
            raise InputError(f"{where}: no column '{chosen}'; columns are: {columns}")
        return chosen
    for name in defaults:
        if name in frame.columns:
            return name
    looked = ", ".join(map(repr, defaults))
    raise InputError(
        f"{where}: none of the columns {looked}; columns are: {columns} (choose one with {option})"
    )


def _parse_label_time(text: str | None, where: str) -> datetime:
    """One label time: ISO-8601 (naive = UTC, ``Z`` or an offset) or an epoch number.

    Epoch numbers are read as milliseconds; their magnitude makes seconds,
    microseconds and nanoseconds unambiguous too (a year-2020 time is about
    1.6e9 s, 1.6e12 ms, 1.6e15 µs, 1.6e18 ns), so those are accepted rather
    than read as 1970.
    """
    value = (text or "").strip()
    if not value:
        raise InputError(f"{where}: no time (the cell is empty)")
    if re.fullmatch(r"-?\d+(?:\.\d+)?", value):
        number = float(value)
        magnitude = abs(number)
        scale = 1.0 if magnitude < 1e11 else 1e3 if magnitude < 1e14 else 1e6 if magnitude < 1e17 else 1e9
        return datetime.fromtimestamp(number / scale, tz=UTC)
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise InputError(
            f"{where}: cannot read time {value!r}; expected ISO-8601 such as 2021-03-01 17:00, "
            "2021-03-01T17:00:00Z or 2021-03-01T18:00:00+01:00, or epoch milliseconds"
        ) from None
    return _as_utc(moment)


def _as_utc(moment: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _first_problem(error: ValidationError) -> str:
    """The first validation problem in one line: which field and what was wrong."""
    problem = error.errors()[0]
    location = ".".join(str(part) for part in problem["loc"])
    return f"field '{location}': {problem['msg']}" if location else problem["msg"]


# ---------------------------------------------------------------- scoring


@dataclass
class DetectorScore:
    """One detector's score (or the ``all detectors`` union) under one window."""

    detector: str
    alerts: int
    events: int
    caught: int
    recall: float | None
    precision: float | None
    false_alarms: int
    false_alarms_per_symbol_day: float | None
    delay_median_s: float | None
    delay_p90_s: float | None
    delay_max_s: float | None
    delays: list[float] = field(default_factory=list)


@dataclass
class EvaluationReport:
    """Scores per detector plus the per-event detail they were counted from.

    ``detail`` has one row per (event, detector): the event's ``symbol`` and
    ``event_time`` as labelled, ``detector``, ``caught`` and ``delay_s`` (null
    when missed), so a surprising recall can be traced to the events behind it.
    """

    scores: list[DetectorScore]
    symbol_days: float | None
    before: timedelta
    after: timedelta
    detail: pl.DataFrame
    typology: str | None = None

    def scores_frame(self) -> pl.DataFrame:
        """The scores as a frame (without the raw delay lists), for JSON/CSV output and tests."""
        return pl.DataFrame(
            [{k: v for k, v in vars(score).items() if k != "delays"} for score in self.scores],
            infer_schema_length=None,
        )


def normalised_symbol(column: str = "symbol") -> pl.Expr:
    """Symbol key that matches across venues' spellings: ``MTH/BTC`` = ``MTHBTC`` = ``mth-btc``.

    Upper case, a ``:SETTLE`` suffix (ccxt derivatives, ``BTC/USDT:USDT``) cut,
    and ``/``, ``-``, ``_`` and surrounding spaces dropped.
    """
    return pl.col(column).str.to_uppercase().str.replace(r":.*$", "").str.replace_all(r"[/\-_\s]", "")


def evaluate_alerts(
    alerts: pl.DataFrame,
    labels: pl.DataFrame,
    *,
    before: timedelta = DEFAULT_BEFORE,
    after: timedelta = DEFAULT_AFTER,
    symbol_days: float | None = None,
    typology: str | None = None,
    detectors: Sequence[str] = (),
) -> EvaluationReport:
    """Score every detector in ``alerts`` (and their union) against the labelled events.

    ``alerts`` needs columns id, symbol, detected_at, detector (and typology
    when ``typology`` filters); ``labels`` needs symbol and event_time. Alerts
    with the same id are counted once: ids are deterministic, so a repeated id
    is the same alert written twice (e.g. two runs' outputs concatenated).
    ``detectors`` are scored even when they raised no alert (a row of zeros
    rather than a missing row).
    """
    if before < timedelta(0) or after < timedelta(0):
        raise InputError(f"window must not be negative (before={before}, after={after})")
    scored = _prepare_alerts(alerts, typology)
    if typology is not None and "typology" in labels.columns:
        # Labels of several typologies (as the simulator writes): score only the matching ones;
        # a label without a typology counts for any.
        labels = labels.filter(pl.col("typology").is_null() | (pl.col("typology") == typology))
    events = (
        labels.select("symbol", pl.col("event_time").cast(TIME))
        .with_row_index("_event")
        .with_columns(normalised_symbol().alias("_key"))
    )
    matches = _matches(scored, events, before, after)
    named = set(scored.get_column("detector").to_list()) | set(detectors)
    listed = [*sorted(named - {ALL_DETECTORS}), ALL_DETECTORS]
    detail = _event_detail(events, matches, listed)
    true_alerts = _count_by_detector(matches.select("detector", "_alert").unique())
    alert_counts = _count_by_detector(scored)
    scores = [
        _score(
            detector,
            alerts=alert_counts.get(detector, 0),
            true_alerts=true_alerts.get(detector, 0),
            detail=detail.filter(pl.col("detector") == detector),
            symbol_days=symbol_days,
        )
        for detector in listed
    ]
    return EvaluationReport(
        scores=scores,
        symbol_days=symbol_days,
        before=before,
        after=after,
        detail=detail.select(list(DETAIL_SCHEMA)),
        typology=typology,
    )


def _prepare_alerts(alerts: pl.DataFrame, typology: str | None) -> pl.DataFrame:
    """The alerts to score, once per id, with a symbol key, and repeated under ALL_DETECTORS."""
    frame = alerts
    if typology is not None:
        frame = frame.filter(pl.col("typology") == typology)
    if "id" in frame.columns:
        frame = frame.unique(subset="id", keep="first", maintain_order=True)
    frame = frame.select(
        pl.col("detector").cast(pl.String),
        pl.col("detected_at").cast(TIME),
        normalised_symbol().alias("_key"),
    ).with_row_index("_alert")
    return pl.concat([frame, frame.with_columns(pl.lit(ALL_DETECTORS).alias("detector"))])


def _matches(alerts: pl.DataFrame, events: pl.DataFrame, before: timedelta, after: timedelta) -> pl.DataFrame:
    """Every (alert, event) pair on one symbol whose detection lies in the event's window, ends included."""
    window = pl.col("detected_at").is_between(
        pl.col("event_time") - pl.lit(before), pl.col("event_time") + pl.lit(after), closed="both"
    )
    return alerts.join(events.select("_event", "_key", "event_time"), on="_key", how="inner").filter(window)


def _event_detail(events: pl.DataFrame, matches: pl.DataFrame, detectors: list[str]) -> pl.DataFrame:
    """One row per (event, detector): caught or not, and the delay of the earliest alert in the window."""
    earliest = matches.group_by("detector", "_event").agg(pl.col("detected_at").min().alias("_first"))
    order = pl.DataFrame({"detector": detectors}, schema={"detector": pl.String()}).with_row_index("_order")
    return (
        events.join(order, how="cross")
        .join(earliest, on=["detector", "_event"], how="left")
        .with_columns(
            pl.col("_first").is_not_null().alias("caught"),
            ((pl.col("_first") - pl.col("event_time")).dt.total_microseconds() / 1e6).alias("delay_s"),
        )
        .sort("_order", "_event")
    )


def _count_by_detector(frame: pl.DataFrame) -> dict[str, int]:
    return dict(frame.group_by("detector").len().iter_rows())


def _score(
    detector: str, *, alerts: int, true_alerts: int, detail: pl.DataFrame, symbol_days: float | None
) -> DetectorScore:
    """Turn one detector's counts and per-event delays into the reported figures.

    Ratios with nothing to divide by (no alerts, no events, no or zero symbol-days)
    are None, shown as a dash, rather than a misleading 0.
    """
    events = detail.height
    delays = detail.filter(pl.col("caught")).get_column("delay_s").sort()
    false_alarms = alerts - true_alerts
    return DetectorScore(
        detector=detector,
        alerts=alerts,
        events=events,
        caught=delays.len(),
        recall=delays.len() / events if events else None,
        precision=true_alerts / alerts if alerts else None,
        false_alarms=false_alarms,
        false_alarms_per_symbol_day=false_alarms / symbol_days if symbol_days else None,
        delay_median_s=delays.median() if delays.len() else None,
        delay_p90_s=delays.quantile(0.9, interpolation="linear") if delays.len() else None,
        delay_max_s=delays.max() if delays.len() else None,
        delays=delays.to_list(),
    )


# ---------------------------------------------------------------- held out, forward in time


@dataclass(frozen=True)
class Span:
    """Market time ``[since, until)``; None leaves that end open."""

    since: datetime | None = None
    until: datetime | None = None

    def holds(self, moment: pl.Expr) -> pl.Expr:
        """True where ``moment`` lies in the span."""
        inside = pl.lit(True)
        if self.since is not None:
            inside &= moment >= self.since
        if self.until is not None:
            inside &= moment < self.until
        return inside


@dataclass(frozen=True)
class ForwardFold:
    """Choose settings on ``choose`` (all market time before the cut), report on ``test`` only."""

    choose: Span
    test: Span


def forward_folds(
    event_times: Sequence[datetime], *, first_test: int, test_size: int, before: timedelta = DEFAULT_BEFORE
) -> list[ForwardFold]:
    """Expanding-window folds forward in time over labelled events.

    Events are sorted by time; fold k tests events ``first_test + k·test_size`` onwards
    (``test_size`` of them, the last fold what is left) and chooses on everything
    before its cut, the first test event's time minus ``before`` (the opening of its
    catch window). So with 31 events, ``first_test=15, test_size=8`` chooses on the
    earliest 15 and tests the next 8, then chooses on 23 and tests the last 8.
    """
    times = sorted(_as_utc(moment) for moment in event_times)
    if first_test < 1 or test_size < 1 or first_test >= len(times):
        raise InputError(
            f"forward folds: {len(times)} event(s) leave nothing to test after the first {first_test} "
            f"(test size {test_size}); need first_test ≥ 1, test_size ≥ 1 and more events than first_test"
        )
    cuts: list[datetime | None] = [
        times[start] - before for start in range(first_test, len(times), test_size)
    ]
    cuts.append(None)
    return [
        ForwardFold(choose=Span(until=cut), test=Span(cut, after)) for cut, after in itertools.pairwise(cuts)
    ]


def events_in(labels: pl.DataFrame, span: Span, before: timedelta = DEFAULT_BEFORE) -> pl.DataFrame:
    """The labelled events whose catch window opens inside ``span`` (so their alerts fall in it too)."""
    return labels.filter(span.holds(pl.col("event_time").cast(TIME) - before))


def outside_events(
    frame: pl.DataFrame, labels: pl.DataFrame, column: str = "detected_at", margin: timedelta = QUIET_MARGIN
) -> pl.DataFrame:
    """The rows of ``frame`` (alerts or trades) whose ``column`` is farther than ``margin`` from every
    labelled event on their symbol; symbols match as in `normalised_symbol`."""
    rows = frame.with_row_index("_row")
    return rows.join(_near_events(rows, labels, column, margin), on="_row", how="anti").drop("_row")


def _near_events(rows: pl.DataFrame, labels: pl.DataFrame, column: str, margin: timedelta) -> pl.DataFrame:
    """The ``_row`` of each row within ``margin`` of a labelled event on its symbol."""
    events = labels.select(normalised_symbol().alias("_key"), pl.col("event_time").cast(TIME)).unique()
    return (
        rows.select("_row", pl.col(column).cast(TIME), normalised_symbol().alias("_key"))
        .join(events, on="_key")
        .filter((pl.col(column) - pl.col("event_time")).abs() <= margin)
        .select("_row")
        .unique()
    )


@dataclass
class HeldOutPart:
    """One held-out part of the market data, ready to score any number of alert sets on it.

    Recall and delays are `evaluate_alerts`' on ``events`` (those whose window opens
    in ``span``), from the alerts decided in the span. False alarms replace its
    count: the span's alerts farther than ``margin`` from every labelled event (any
    event, in the span or not), per quiet symbol-day of the span's trades.
    """

    span: Span
    labels: pl.DataFrame
    events: pl.DataFrame
    symbol_days: float
    margin: timedelta = QUIET_MARGIN

    @classmethod
    def of(
        cls, labels: pl.DataFrame, trades: pl.DataFrame, span: Span, margin: timedelta = QUIET_MARGIN
    ) -> HeldOutPart:
        """The part of ``trades`` and ``labels`` in ``span``; the quiet symbol-days are counted once here."""
        days = quiet_symbol_days(trades.filter(span.holds(pl.col("ts").cast(TIME))), labels, margin=margin)
        return cls(span=span, labels=labels, events=events_in(labels, span), symbol_days=days, margin=margin)

    def scores(
        self, alerts: pl.DataFrame, *, typology: str | None = None, detectors: Sequence[str] = ()
    ) -> dict[str, DetectorScore]:
        """Scores by detector and for ``ALL_DETECTORS``; ``detectors`` get a row even without alerts."""
        part = alerts.filter(self.span.holds(pl.col("detected_at").cast(TIME)))
        if typology is not None:
            part = part.filter(pl.col("typology") == typology)
        days = self.symbol_days
        report = evaluate_alerts(part, self.events, symbol_days=days, detectors=detectors)
        false = outside_events(
            part.unique(subset="id", keep="first"), self.labels, "detected_at", self.margin
        )
        counts = _count_by_detector(false) | {ALL_DETECTORS: false.height}
        return {
            score.detector: replace(
                score,
                false_alarms=counts.get(score.detector, 0),
                false_alarms_per_symbol_day=counts.get(score.detector, 0) / days if days else None,
            )
            for score in report.scores
        }


def best_choice(candidates: Sequence[tuple[T, DetectorScore]]) -> tuple[T, DetectorScore]:
    """The stated criterion for choosing settings: most events caught, then fewest false alarms per
    symbol-day, then the smallest median and p90 delay; of full ties the first listed wins."""
    if not candidates:
        raise InputError("nothing to choose from: no candidate settings were scored")

    def key(candidate: tuple[T, DetectorScore]) -> tuple[float, ...]:
        score = candidate[1]
        return (
            -score.caught,
            _or_inf(score.false_alarms_per_symbol_day),
            _or_inf(score.delay_median_s),
            _or_inf(score.delay_p90_s),
        )

    return min(candidates, key=key)


def scaled_count(part: int, of: int, events: int) -> int:
    """A target given as ``part`` of ``of`` events (30 of 31) scaled to ``events``: the fewest caught
    that reach the same share."""
    return math.ceil(events * part / of - 1e-9)


def alerts_to_frame(alerts: Sequence[Alert]) -> pl.DataFrame:
    """Alerts in the columns of ALERT_FRAME_SCHEMA, as `load_alerts` reads them from a file."""
    rows = [{name: getattr(alert, name) for name in ALERT_FRAME_SCHEMA} for alert in alerts]
    return pl.DataFrame(rows, schema=ALERT_FRAME_SCHEMA)


def _or_inf(value: float | None) -> float:
    return math.inf if value is None else value


# ---------------------------------------------------------------- rendering
