"""Train the pump-and-dump classifier over La Morgia chunk features, with its model card.

Labels (the definition the card repeats): a pump's *onset* is its manual onset
when the events file gives one, else its announcement. A chunk is **positive**
when it overlaps [onset, onset + pump_window_s) — the crowd's market buys, which
La Morgia et al. label as the pump. Chunks overlapping [announcement −
ignore_before_s, onset + ignore_after_min) that are not positive are left
**unlabelled**: the minutes around the rush (early insiders, the dump, the crowd
selling) are abnormal but not the onset, and neither lesson should be taught.
Every other chunk is negative.

The split is **forward in time only**: events sorted by announcement; the
latest `test_share` of them are the test; of the rest, the latest
`validation_share` pick the number of boosting rounds and the decision
threshold (best chunk F1); the model is then refitted on every training chunk
with those choices and scored once on the test. Each split is a cut in time
(the first event of the later part's announcement − ignore_before_s): every
chunk that starts before it is on the earlier side, whatever its symbol.

The model file (a zip of LightGBM's text model and the card) is written and read by
`tapewatch.detect.pump.model_file`, beside the detector that loads it.
"""

from __future__ import annotations

import platform
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import lightgbm as lgb
import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score, precision_recall_curve

from tapewatch.detect.pump.model_features import (
    chunk_features,
    feature_matrix,
    model_feature_names,
)
from tapewatch.detect.pump.model_file import ChunkMetrics, DataPart, PumpModel, PumpModelCard, save_pump_model
from tapewatch.detect.pump.settings import PumpLabelSettings, PumpTrainSettings
from tapewatch.errors import InputError
from tapewatch.evaluate.scoring import load_labels, normalised_symbol
from tapewatch.io.readers import read_inputs
from tapewatch.records import TIME

LIMITS = (
    "validation chunks are also in the final fit, so their metrics are optimistic: trust the test's",
    (
        "a chunk is scored only once complete (its symbol trades again after it): alerts come up to "
        "one chunk after the rush starts"
    ),
    (
        "features compare a chunk with the longest rolling window of history; a symbol's first hours "
        "are not comparable (the detector waits them out)"
    ),
    "pump styles, venues and quote currencies absent from the training events are untested",
)
LABEL_SCHEMA: dict[str, pl.DataType] = {"symbol": pl.String(), "announced_at": TIME, "onset": TIME}


# ---------------------------------------------------------------- labels


def read_pump_labels(path: Path) -> pl.DataFrame:
    """Events file → columns symbol, announced_at, onset (null where the file has no manual onset).

    The announcement is read as `tapewatch evaluate` reads labels (symbol from `symbol`
    or `pair`, time from `announced_at_utc`, `event_time`, …); the onset from
    `manual_onset_utc` when that column exists.
    """
    path = Path(path)
    events = load_labels(path)
    onsets = pl.Series("onset", [None] * events.height, dtype=TIME)
    raw = pl.read_csv(path, infer_schema=False) if path.suffix.lower() == ".csv" else None
    if raw is not None and "manual_onset_utc" in raw.columns:
        text = raw.get_column("manual_onset_utc").str.strip_chars()
        onsets = text.str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
        unreadable = text.is_not_null() & (text != "") & onsets.is_null()
        if unreadable.any():
            row = int(unreadable.arg_max()) + 1
            raise InputError(f"labels '{path}': row {row}: cannot read manual_onset_utc {text[row - 1]!r}")
    return pl.DataFrame(
        {"symbol": events["symbol"], "announced_at": events["event_time"], "onset": onsets.alias("onset")},
        schema=LABEL_SCHEMA,
    )


def label_chunks(chunks: pl.DataFrame, labels: pl.DataFrame, settings: PumpLabelSettings) -> pl.DataFrame:
    """`chunks` with `label`: 1 in a pump window, null in the unlabelled margin around it, 0 elsewhere."""
    events = labels.select(
        normalised_symbol().alias("_key"),
        pl.col("announced_at").cast(TIME),
        pl.coalesce("onset", "announced_at").cast(TIME).alias("_onset"),
    )
    overlaps = chunks.with_row_index("_row").with_columns(normalised_symbol().alias("_key"))
    overlaps = overlaps.join(events, on="_key").select(
        "_row",
        _overlap(pl.col("_onset"), pl.col("_onset") + timedelta(seconds=settings.pump_window_s)).alias(
            "_pump"
        ),
        _overlap(
            pl.min_horizontal("announced_at", "_onset") - timedelta(seconds=settings.ignore_before_s),
            pl.col("_onset") + timedelta(minutes=settings.ignore_after_min),
        ).alias("_near"),
    )
    flags = overlaps.group_by("_row").agg(pl.col("_pump").any(), pl.col("_near").any())
    return (
        chunks.with_row_index("_row")
        .join(flags, on="_row", how="left")
        .with_columns(
            label=pl.when(pl.col("_pump").fill_null(False))
            .then(1)
            .when(pl.col("_near").fill_null(False))
            .then(None)
            .otherwise(0)
            .cast(pl.Int8)
        )
        .sort("_row")
        .drop("_row", "_pump", "_near")
    )


def _overlap(since: pl.Expr, until: pl.Expr) -> pl.Expr:
    """The chunk [start, end) overlaps [since, until)."""
    return (pl.col("start") < until) & (pl.col("end") > since)


# ---------------------------------------------------------------- training


def train_pump_model(
    trades: pl.DataFrame,
    labels: pl.DataFrame,
    chunk_s: float = 25.0,
    settings: PumpTrainSettings | None = None,
) -> tuple[PumpModel, PumpModelCard]:
    """Fit the classifier on the earlier events, choose rounds and threshold on the latest training
    events, test on the later events (see the module docstring); `chunk_s` overrides the settings'.

    `trades` is sorted by venue, symbol, ts; `labels` has symbol, announced_at and onset
    (`read_pump_labels`). Raises InputError when the labels give too few pumps to split.
    """
    settings = settings or PumpTrainSettings()
    settings = settings.model_copy(
        update={"features": settings.features.model_copy(update={"chunk_s": float(chunk_s)})}
    )
    chunks = chunk_features(trades, settings.features).filter(pl.col("closed_at").is_not_null())
    chunks = label_chunks(chunks, labels, settings.labels)
    if not chunks.filter(pl.col("label") == 1).height:
        raise InputError(
            "no chunk of the trades falls in a labelled pump window: check that the labels' symbols "
            "and times match the trades"
        )
    events = labels.sort("announced_at")
    valid_cut, test_cut = _cuts(events, settings)
    parts = _parts(chunks, valid_cut, test_cut)
    names = model_feature_names(settings.features)
    params = _params(settings)
    first = _fit(
        params,
        parts["train"],
        names,
        settings.max_rounds,
        valid=parts["validation"],
        patience=settings.early_stopping_rounds,
    )
    rounds = first.best_iteration or first.current_iteration()
    threshold = _best_threshold(parts["validation"], PumpModel(first, settings.features, 0.5))
    known = pl.concat([parts["train"], parts["validation"]])
    model = PumpModel(_fit(params, known, names, rounds), settings.features, threshold)
    card = _card(model, settings, events, parts, (valid_cut, test_cut), rounds, params)
    return model, card


def _cuts(events: pl.DataFrame, settings: PumpTrainSettings) -> tuple[datetime, datetime | None]:
    """The validation and test cut times: the first later event's announcement − ignore_before_s."""
    count = events.height
    tests = max(1, round(count * settings.test_share)) if settings.test_share else 0
    validations = max(1, round((count - tests) * settings.validation_share))
    if count - tests - validations < 1:
        raise InputError(
            f"labels: {count} pump(s) cannot be split forward into training, validation"
            + (" and test" if tests else "")
            + f"; need at least {2 + bool(tests)}"
        )
    margin = timedelta(seconds=settings.labels.ignore_before_s)
    times = events.get_column("announced_at")
    valid_cut = times[count - tests - validations] - margin
    test_cut = times[count - tests] - margin if tests else None
    return valid_cut, test_cut


def _parts(chunks: pl.DataFrame, valid_cut: datetime, test_cut: datetime | None) -> dict[str, pl.DataFrame]:
    """Labelled chunks on each side of the cuts."""
    labelled = chunks.filter(pl.col("label").is_not_null())
    end = test_cut or datetime.max.replace(tzinfo=UTC)
    parts = {
        "train": labelled.filter(pl.col("start") < valid_cut),
        "validation": labelled.filter((pl.col("start") >= valid_cut) & (pl.col("start") < end)),
        "test": labelled.filter(pl.col("start") >= end),
    }
    for name in ("train", "validation"):
        if not parts[name].filter(pl.col("label") == 1).height:
            raise InputError(
                f"labels: no pump chunk in the {name} part of the forward split; "
                "the trades must cover the labelled pumps (give more events)"
            )
    return parts


def _params(settings: PumpTrainSettings) -> dict[str, float | int | str]:
    """LightGBM parameters: single-threaded and deterministic, so a retrain gives the same file."""
    return {
        "objective": "binary",
        "learning_rate": settings.learning_rate,
        "num_leaves": settings.num_leaves,
        "min_data_in_leaf": settings.min_data_in_leaf,
        "feature_fraction": settings.feature_fraction,
        "seed": settings.seed,
        "num_threads": 1,
        "deterministic": "true",
        "force_row_wise": "true",
        "verbose": -1,
    }


def _dataset(chunks: pl.DataFrame, names: list[str], reference: lgb.Dataset | None = None) -> lgb.Dataset:
    """Chunks as LightGBM data, the rare pump chunks (one per thousands) weighted up to the negatives' mass.

    Sample weights rather than `scale_pos_weight`: LightGBM then starts from the weighted label
    mean (0.5), where with `scale_pos_weight` it starts from the raw one (0.001) and its first
    trees jump to probabilities of exactly 0 or 1, leaving no threshold to choose.
    """
    label = chunks.get_column("label").to_numpy()
    positives = int(label.sum())
    weight = np.where(label == 1, (label.size - positives) / positives, 1.0)
    matrix = feature_matrix(chunks, names)
    if reference is not None:
        return reference.create_valid(matrix, label, weight=weight)
    return lgb.Dataset(matrix, label, weight=weight, feature_name=names)


def _fit(
    params: dict,
    chunks: pl.DataFrame,
    names: list[str],
    rounds: int,
    *,
    valid: pl.DataFrame | None = None,
    patience: int = 0,
) -> lgb.Booster:
    """Train a booster; with `valid`, stop once its (weighted) log-loss has not improved for `patience` rounds."""
    data = _dataset(chunks, names)
    if valid is None:
        return lgb.train(params, data, num_boost_round=rounds)
    check = _dataset(valid, names, reference=data)
    return lgb.train(
        params | {"metric": "binary_logloss"},
        data,
        num_boost_round=rounds,
        valid_sets=[check],
        callbacks=[lgb.early_stopping(patience, verbose=False)],
    )


def _best_threshold(chunks: pl.DataFrame, model: PumpModel) -> float:
    """The probability cut with the best chunk F1 on `chunks` (the validation slice)."""
    precision, recall, thresholds = precision_recall_curve(
        chunks.get_column("label"), model.probabilities(chunks)
    )
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    return float(thresholds[int(np.argmax(f1))])


def chunk_metrics(chunks: pl.DataFrame, model: PumpModel) -> ChunkMetrics:
    """Precision, recall and F1 of `model` at its threshold over labelled chunks, plus average precision."""
    truth = chunks.get_column("label").to_numpy().astype(bool)
    probability = model.probabilities(chunks)
    flagged = probability >= model.threshold
    hits = int((flagged & truth).sum())
    precision = hits / flagged.sum() if flagged.any() else None
    recall = hits / truth.sum() if truth.any() else None
    f1 = None
    if precision is not None and recall is not None:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return ChunkMetrics(
        chunks=chunks.height,
        positives=int(truth.sum()),
        precision=precision,
        recall=recall,
        f1=f1,
        average_precision=float(average_precision_score(truth, probability)) if truth.any() else None,
    )


def _card(
    model: PumpModel,
    settings: PumpTrainSettings,
    events: pl.DataFrame,
    parts: dict[str, pl.DataFrame],
    cuts: tuple[datetime, datetime | None],
    rounds: int,
    params: dict,
) -> PumpModelCard:
    valid_cut, test_cut = cuts
    end = test_cut or datetime.max.replace(tzinfo=UTC)
    times = pl.col("announced_at") - timedelta(seconds=settings.labels.ignore_before_s)
    sides = {
        "train": events.filter(times < valid_cut),
        "validation": events.filter((times >= valid_cut) & (times < end)),
        "test": events.filter(times >= end),
    }
    split = f"forward in time: train before {valid_cut:%Y-%m-%d %H:%M}Z, validation from it" + (
        f", test from {test_cut:%Y-%m-%d %H:%M}Z" if test_cut else ", no test part"
    )
    s = settings.labels
    return PumpModelCard(
        created_at=datetime.now(UTC),
        threshold=model.threshold,
        features=settings.features,
        feature_names=model.feature_names,
        labels=s,
        label_definition=(
            f"positive: chunks overlapping [onset, onset + {s.pump_window_s:g} s), onset = manual onset or "
            f"else announcement; unlabelled: other chunks overlapping [announcement − {s.ignore_before_s:g} s, "
            f"onset + {s.ignore_after_min:g} min); negative: every other chunk with trades"
        ),
        split=split + "; rounds by early stopping and threshold by best F1 on validation, then refit on "
        "train + validation",
        validation_from=valid_cut,
        test_from=test_cut,
        train=_part(sides["train"], parts["train"]),
        validation=_part(sides["validation"], parts["validation"]),
        test=_part(sides["test"], parts["test"]) if test_cut else None,
        rounds=rounds,
        hyperparameters={k: v for k, v in params.items() if k not in ("verbose",)},
        metrics={
            "validation_in_sample": chunk_metrics(parts["validation"], model),
            "test": chunk_metrics(parts["test"], model) if test_cut else None,
        },
        limits=[_size_limit(events), *LIMITS],
        versions=_versions(),
    )


def _size_limit(events: pl.DataFrame) -> str:
    first, last = events.get_column("announced_at").min(), events.get_column("announced_at").max()
    return (
        f"learnt from only {events.height} labelled pumps ({first:%Y-%m-%d} … {last:%Y-%m-%d}): "
        "treat the probability as a ranking, not a calibrated chance"
    )


def _part(events: pl.DataFrame, chunks: pl.DataFrame) -> DataPart:
    return DataPart(
        events=[
            f"{row[0]} @ {row[1]:%Y-%m-%d %H:%M}Z"
            for row in events.select("symbol", "announced_at").iter_rows()
        ],
        chunks=chunks.height,
        positives=int(chunks.get_column("label").sum()),
        first_chunk=chunks.get_column("start").min(),
        last_chunk=chunks.get_column("start").max(),
    )


def _versions() -> dict[str, str]:
    packages = ("tapewatch", "lightgbm", "scikit-learn", "polars", "numpy")
    return {"python": platform.python_version()} | {name: version(name) for name in packages}


def train_pump_command(
    trades_dir: Path,
    labels_csv: Path,
    out_path: Path,
    chunk_s: float = 25.0,
    settings: PumpTrainSettings | None = None,
    *,
    fmt: str = "auto",
    venue: str | None = None,
) -> PumpModelCard:
    """`tapewatch train pump`: read the trades, train on the labelled pumps, write the model file, return its card."""
    read = read_inputs([trades_dir], fmt=fmt, venue=venue, kinds=("trades",))
    if read.trades.is_empty():
        raise InputError(f"--trades '{trades_dir}': no trades found")
    model, card = train_pump_model(read.trades, read_pump_labels(labels_csv), chunk_s, settings)
    save_pump_model(model, card, out_path)
    return card
