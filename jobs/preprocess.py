"""Processing job: fit the features (training) or apply them (inference).

preprocess.py fit --data DIR --output DIR [--test-size 0.2] [--seed 7]
    writes OUTPUT/train/train.csv, OUTPUT/test/test.csv, OUTPUT/transformer/transformer.joblib,
    and OUTPUT/sample/sample.csv: the first test rows' features, as a served model takes them
preprocess.py transform --data DIR --transformer DIR --output DIR
    writes OUTPUT/features/<input name> for each input CSV
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from preprocessing import features

SAMPLE_ROWS = 5


def read_csvs(folder: Path) -> list[tuple[str, pd.DataFrame]]:
    files = sorted(p for p in Path(folder).rglob("*.csv") if p.is_file())
    if not files:
        raise SystemExit(f"preprocess: no CSV file under {folder}")
    return [(p.name, pd.read_csv(p, skipinitialspace=False)) for p in files]


def write_matrix(matrix: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, matrix, delimiter=",", fmt="%.10g")


def fit(args: argparse.Namespace) -> None:
    frame = pd.concat([frame for _, frame in read_csvs(args.data)], ignore_index=True)
    transformer, train, test = features.fit(frame, test_size=args.test_size, seed=args.seed)
    write_matrix(train, args.output / "train" / "train.csv")
    write_matrix(test, args.output / "test" / "test.csv")
    write_matrix(test[:SAMPLE_ROWS, 1:], args.output / "sample" / "sample.csv")  # without the label
    (args.output / "transformer").mkdir(parents=True, exist_ok=True)
    features.save(transformer, args.output / "transformer")
    print(
        f"preprocess: fitted on {len(frame)} rows: {len(train)} train, {len(test)} test, "
        f"{train.shape[1] - 1} features"
    )


def transform(args: argparse.Namespace) -> None:
    transformer = features.load(args.transformer)
    for name, frame in read_csvs(args.data):
        write_matrix(features.transform(frame, transformer), args.output / "features" / name)
        print(f"preprocess: transformed {len(frame)} rows of {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="preprocess")
    parser.add_argument("mode", choices=["fit", "transform"])
    parser.add_argument("--data", type=Path, default=Path("/opt/ml/processing/input/data"))
    parser.add_argument("--transformer", type=Path, default=Path("/opt/ml/processing/input/transformer"))
    parser.add_argument("--output", type=Path, default=Path("/opt/ml/processing/output"))
    parser.add_argument("--test-size", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    try:
        fit(args) if args.mode == "fit" else transform(args)
    except features.SchemaError as ex:
        raise SystemExit(f"preprocess: {ex}") from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
