"""The one feature module: `fit` in the training pipeline, `transform` in inference.

Both use the transformer artifact that `fit` produced, so training and serving
see the same features.
"""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from preprocessing.census import CATEGORICAL, INCOME_HIGH, LABEL, NUMERIC, missing_columns

TRANSFORMER_FILE = "transformer.joblib"


class SchemaError(ValueError):
    pass


def check_schema(frame: pd.DataFrame, with_label: bool) -> None:
    missing = missing_columns(frame, with_label)
    if missing:
        raise SchemaError(f"the data lacks column(s) {', '.join(repr(c) for c in missing)}")


def build_transformer() -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("numeric", StandardScaler(), NUMERIC),
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
        ]
    )


def fit(frame: pd.DataFrame, test_size: float, seed: int):
    """Split (seeded, stratified), fit the transformer on the training part.

    Returns (transformer, train, test): train and test are arrays whose first
    column is the label (1 = high income), as the training job expects.
    """
    check_schema(frame, with_label=True)
    labels = (frame[LABEL] == INCOME_HIGH).astype(int)
    x_train, x_test, y_train, y_test = train_test_split(
        frame.drop(columns=[LABEL]), labels, test_size=test_size, random_state=seed, stratify=labels
    )
    transformer = build_transformer().fit(x_train)
    train = np.column_stack([y_train.to_numpy(), transformer.transform(x_train)])
    test = np.column_stack([y_test.to_numpy(), transformer.transform(x_test)])
    return transformer, train, test


def transform(frame: pd.DataFrame, transformer: ColumnTransformer) -> np.ndarray:
    """Features for inference, from the transformer that training fitted."""
    check_schema(frame, with_label=False)
    return transformer.transform(frame.drop(columns=[LABEL], errors="ignore"))


def save(transformer: ColumnTransformer, folder: Path) -> Path:
    path = Path(folder) / TRANSFORMER_FILE
    joblib.dump(transformer, path)
    return path


def load(folder: Path) -> ColumnTransformer:
    return joblib.load(Path(folder) / TRANSFORMER_FILE)
