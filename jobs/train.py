"""Training job (sagemaker-training toolkit): logistic regression on the fitted features.

Reads the `train` channel (first column the label), writes model.joblib to the
model dir. Hyperparameters: C, max_iter, seed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

MODEL_FILE = "model.joblib"


def load_matrix(folder: Path) -> np.ndarray:
    files = sorted(p for p in Path(folder).rglob("*.csv") if p.is_file())
    if not files:
        raise SystemExit(f"train: no CSV file under {folder}")
    return np.vstack([np.loadtxt(p, delimiter=",", ndmin=2) for p in files])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="train")
    # The toolkit passes one-letter hyperparameters with one dash ("-C 0.5").
    parser.add_argument("-C", "--C", dest="C", type=float, default=1.0)
    parser.add_argument("--max_iter", "--max-iter", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--train", type=Path, default=Path(os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    )
    parser.add_argument(
        "--model-dir", type=Path, default=Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    )
    args, _ = parser.parse_known_args(argv)
    data = load_matrix(args.train)
    model = LogisticRegression(C=args.C, max_iter=args.max_iter, random_state=args.seed)
    model.fit(data[:, 1:], data[:, 0].astype(int))
    args.model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, args.model_dir / MODEL_FILE)
    print(f"train: fitted logistic regression (C={args.C}) on {len(data)} rows, {data.shape[1] - 1} features")
    # Read by the pipeline's metric definitions (pipelines/training.py: TRAINING_METRICS).
    features, labels = data[:, 1:], data[:, 0].astype(int)
    accuracy = model.score(features, labels)
    loss = log_loss(labels, model.predict_proba(features), labels=model.classes_)
    print(f"train: accuracy={accuracy:.4f} log_loss={loss:.4f} on the training rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
