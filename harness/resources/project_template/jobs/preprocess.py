"""Preprocess: one-hot the contract type, split the customers into train and test rows (seeded),
and keep the test rows' features for batch scoring.

Writes, without headers and label first as SageMaker's CSV convention has it:
train/train.csv, test/test.csv, and score/features.csv (features only).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

PROCESSING = Path("/opt/ml/processing")
FEATURES = ("tenure_months", "monthly_charges", "support_calls")
CONTRACTS = ("monthly", "yearly", "two-year")


def features(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's columns: the numeric ones and one column per contract type."""
    out = frame[list(FEATURES)].astype(float)
    for contract in CONTRACTS:
        out[f"contract_{contract}"] = (frame["contract"] == contract).astype(float)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="preprocess")
    parser.add_argument("--test-size", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    files = sorted((PROCESSING / "input" / "customers").rglob("*.csv"))
    frame = pd.concat(pd.read_csv(path) for path in files)
    rows = pd.concat([frame["churned"].astype(int), features(frame)], axis=1)
    train, test = train_test_split(
        rows, test_size=args.test_size, random_state=args.seed, stratify=rows["churned"]
    )
    for name, part in (("train", train), ("test", test), ("score", test.drop(columns="churned"))):
        folder = PROCESSING / "output" / name
        folder.mkdir(parents=True, exist_ok=True)
        part.to_csv(
            folder / ("features.csv" if name == "score" else f"{name}.csv"), header=False, index=False
        )
    print(f"preprocess: {len(train)} train and {len(test)} test rows of {len(frame)} customers")


if __name__ == "__main__":
    main()
