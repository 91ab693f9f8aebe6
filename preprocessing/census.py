"""Census-income-like data: the columns of mlmax's census example, with real signal.

Deterministic for a given seed and row count, any size. The label depends on the
features through a logistic model, so a classifier has something to learn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LABEL = "income"
NUMERIC = [
    "age",
    "num persons worked for employer",
    "capital gains",
    "capital losses",
    "dividends from stocks",
]
CATEGORICAL = ["education", "major industry code", "class of worker"]
COLUMNS = [
    "age",
    "education",
    "major industry code",
    "class of worker",
    "num persons worked for employer",
    "capital gains",
    "capital losses",
    "dividends from stocks",
    LABEL,
]

EDUCATION = {
    " Children": -2.0,
    " Less than 1st grade": -1.5,
    " High school graduate": -0.5,
    " Some college but no degree": 0.0,
    " Associates degree-occup /vocational": 0.2,
    " Bachelors degree(BA AB BS)": 0.9,
    " Masters degree(MA MS MEng MEd MSW MBA)": 1.3,
    " Prof school degree (MD DDS DVM LLB JD)": 1.8,
    " Doctorate degree(PhD EdD)": 1.7,
}
INDUSTRY = {
    " Not in universe or children": -1.0,
    " Retail trade": -0.4,
    " Manufacturing-durable goods": 0.2,
    " Construction": 0.0,
    " Finance insurance and real estate": 0.6,
    " Professional services": 0.5,
    " Education": 0.1,
    " Public administration": 0.3,
}
WORKER_CLASS = {
    " Not in universe": -1.0,
    " Private": 0.1,
    " Self-employed-incorporated": 0.8,
    " Self-employed-not incorporated": 0.1,
    " Local government": 0.0,
    " Federal government": 0.3,
    " Without pay": -1.2,
}
INCOME_LOW, INCOME_HIGH = " - 50000.", " 50000+."


def generate(rows: int, seed: int = 7) -> pd.DataFrame:
    """Return `rows` rows of census-like data, the same for the same seed."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    rng = np.random.default_rng(seed)
    age = rng.integers(16, 91, rows)
    education = rng.choice(list(EDUCATION), rows)
    industry = rng.choice(list(INDUSTRY), rows)
    worker = rng.choice(list(WORKER_CLASS), rows)
    employees = rng.integers(0, 7, rows)
    gains = np.where(rng.random(rows) < 0.08, rng.lognormal(8.5, 1.2, rows), 0.0).round()
    losses = np.where(rng.random(rows) < 0.04, rng.lognormal(7.3, 0.4, rows), 0.0).round()
    dividends = np.where(rng.random(rows) < 0.15, rng.lognormal(6.5, 1.5, rows), 0.0).round()
    score = (
        -2.6
        + 0.035 * np.clip(age - 18, 0, 45)
        - 0.03 * np.clip(age - 65, 0, None)
        + np.vectorize(EDUCATION.get)(education)
        + np.vectorize(INDUSTRY.get)(industry)
        + np.vectorize(WORKER_CLASS.get)(worker)
        + 0.25 * employees
        + 0.00012 * gains
        + 0.0003 * losses
        + 0.0004 * dividends
    )
    high = rng.random(rows) < 1.0 / (1.0 + np.exp(-score))
    frame = pd.DataFrame(
        {
            "age": age,
            "education": education,
            "major industry code": industry,
            "class of worker": worker,
            "num persons worked for employer": employees,
            "capital gains": gains,
            "capital losses": losses,
            "dividends from stocks": dividends,
            LABEL: np.where(high, INCOME_HIGH, INCOME_LOW),
        }
    )
    return frame[COLUMNS]


def missing_columns(frame: pd.DataFrame, with_label: bool = True) -> list[str]:
    wanted = COLUMNS if with_label else [c for c in COLUMNS if c != LABEL]
    return [c for c in wanted if c not in frame.columns]
