"""The pump model file: a trained booster with its card, written by training, read by the detector.

The file is a zip holding `model.txt` (LightGBM's own text format) and `card.json`
(the card: what the model learnt from, how it was tested, where not to trust it);
reading it parses text and JSON only, never code.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import lightgbm as lgb
import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tapewatch.detect.pump.model_features import feature_matrix, model_feature_names
from tapewatch.detect.pump.settings import PumpFeatureSettings, PumpLabelSettings
from tapewatch.errors import InputError

FORMAT = "tapewatch-pump-model"
FORMAT_VERSION = 1
MODEL_MEMBER, CARD_MEMBER = "model.txt", "card.json"


class ChunkMetrics(BaseModel):
    """Chunk-level scores of one part of the data at the model's threshold."""

    chunks: int
    positives: int
    precision: float | None
    recall: float | None
    f1: float | None
    average_precision: float | None = Field(description="area under precision-recall, threshold-free")


class DataPart(BaseModel):
    """One side of the forward split: its events and its labelled chunks."""

    events: list[str] = Field(description="symbol @ announcement, in time order")
    chunks: int
    positives: int
    first_chunk: datetime | None
    last_chunk: datetime | None


class PumpModelCard(BaseModel):
    """What the model is, what it learnt from, how it was tested and where it should not be trusted."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["tapewatch-pump-model"] = FORMAT
    format_version: int = FORMAT_VERSION
    model: str = "LightGBM gradient-boosted trees, binary, class-weighted"
    created_at: datetime
    threshold: float = Field(description="probability at or above which a chunk is a pump")
    features: PumpFeatureSettings
    feature_names: list[str]
    labels: PumpLabelSettings
    label_definition: str
    split: str
    validation_from: datetime = Field(description="chunks starting from here validate, earlier ones train")
    test_from: datetime | None = Field(description="chunks starting from here test (None: no test part)")
    train: DataPart
    validation: DataPart
    test: DataPart | None
    rounds: int
    hyperparameters: dict[str, float | int | str]
    metrics: dict[str, ChunkMetrics | None]
    limits: list[str]
    versions: dict[str, str]


@dataclass
class PumpModel:
    """A trained booster with the feature settings and the decision threshold it was chosen with."""

    booster: lgb.Booster
    features: PumpFeatureSettings
    threshold: float

    @property
    def feature_names(self) -> list[str]:
        return model_feature_names(self.features)

    def probabilities(self, chunks: pl.DataFrame) -> np.ndarray:
        """P(pump) for each row of a `chunk_features` frame."""
        if chunks.is_empty():
            return np.empty(0)
        return self.booster.predict(feature_matrix(chunks, self.feature_names), num_threads=1)

    def contributions(self, chunks: pl.DataFrame) -> np.ndarray:
        """Per row and feature, its additive push on the log-odds (SHAP values; last column: the bias)."""
        return self.booster.predict(
            feature_matrix(chunks, self.feature_names), pred_contrib=True, num_threads=1
        )


def save_pump_model(model: PumpModel, card: PumpModelCard, path: Path) -> Path:
    """Write the model file: a zip of LightGBM's text model and the card as JSON."""
    if card.threshold != model.threshold or card.features != model.features:
        raise ValueError("the card does not describe this model (threshold or features differ)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MODEL_MEMBER, model.booster.model_to_string())
        archive.writestr(CARD_MEMBER, card.model_dump_json(indent=2))
    return path


def load_pump_model(path: Path) -> tuple[PumpModel, PumpModelCard]:
    """Read a model file written by `save_pump_model`; anything else is a one-line InputError naming it."""
    path = Path(path)
    where = f"pump model '{path}'"
    try:
        with zipfile.ZipFile(path) as archive:
            card_text = archive.read(CARD_MEMBER).decode("utf-8")
            model_text = archive.read(MODEL_MEMBER).decode("utf-8")
    except FileNotFoundError:
        raise InputError(f"{where}: no such file") from None
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, OSError) as error:
        raise InputError(
            f"{where}: not a tapewatch pump model (expected a zip with {MODEL_MEMBER} and {CARD_MEMBER}: {error})"
        ) from None
    card = _parse_card(card_text, where)
    booster = _parse_booster(model_text, where)
    if booster.feature_name() != card.feature_names:
        raise InputError(f"{where}: the model's features do not match its card's feature_names")
    return PumpModel(booster, card.features, card.threshold), card


def _parse_card(text: str, where: str) -> PumpModelCard:
    try:
        found = json.loads(text).get("format")
        if found != FORMAT:
            raise InputError(f"{where}: card format is {found!r}, expected {FORMAT!r}")
        return PumpModelCard.model_validate_json(text)
    except ValidationError as error:
        problem = error.errors()[0]
        field = ".".join(str(part) for part in problem["loc"])
        raise InputError(f"{where}: {CARD_MEMBER} field '{field}': {problem['msg']}") from None
    except (ValueError, AttributeError) as error:
        raise InputError(f"{where}: unreadable {CARD_MEMBER} ({str(error).splitlines()[0]})") from None


def _parse_booster(text: str, where: str) -> lgb.Booster:
    """LightGBM's text model; a truncated one is refused before LightGBM sees it."""
    if not text.startswith("tree\n") or "end of trees" not in text:
        raise InputError(f"{where}: {MODEL_MEMBER} is not a complete LightGBM text model")
    try:
        return lgb.Booster(model_str=text)
    except lgb.basic.LightGBMError as error:
        raise InputError(f"{where}: {MODEL_MEMBER} cannot be read by LightGBM ({error})") from None
