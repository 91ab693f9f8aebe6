"""Evaluation job: metrics of the trained model on the held-out test set.

Writes OUTPUT/metrics.json: accuracy, precision, recall, f1, roc_auc and the
confusion matrix ([[tn, fp], [fn, tp]]).
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
from pathlib import Path

import joblib
import numpy as np
from sklearn import metrics

MODEL_FILE = "model.joblib"


def load_model(folder: Path):
    folder = Path(folder)
    if (folder / MODEL_FILE).exists():
        return joblib.load(folder / MODEL_FILE)
    archive = folder / "model.tar.gz"
    if not archive.exists():
        raise SystemExit(f"evaluate: neither {MODEL_FILE} nor model.tar.gz under {folder}")
    with tempfile.TemporaryDirectory() as unpacked, tarfile.open(archive) as tar:
        tar.extractall(unpacked, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        return joblib.load(Path(unpacked) / MODEL_FILE)


def evaluate(model, test: np.ndarray) -> dict:
    truth, x = test[:, 0].astype(int), test[:, 1:]
    predicted = model.predict(x)
    scores = model.predict_proba(x)[:, 1]
    return {
        "accuracy": round(float(metrics.accuracy_score(truth, predicted)), 6),
        "precision": round(float(metrics.precision_score(truth, predicted, zero_division=0)), 6),
        "recall": round(float(metrics.recall_score(truth, predicted, zero_division=0)), 6),
        "f1": round(float(metrics.f1_score(truth, predicted, zero_division=0)), 6),
        "roc_auc": round(float(metrics.roc_auc_score(truth, scores)), 6),
        "confusion_matrix": metrics.confusion_matrix(truth, predicted, labels=[0, 1]).tolist(),
        "test_rows": int(len(truth)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="evaluate")
    parser.add_argument("--model", type=Path, default=Path("/opt/ml/processing/input/model"))
    parser.add_argument("--test", type=Path, default=Path("/opt/ml/processing/input/test"))
    parser.add_argument("--output", type=Path, default=Path("/opt/ml/processing/output"))
    args = parser.parse_args(argv)
    files = sorted(Path(args.test).rglob("*.csv"))
    if not files:
        raise SystemExit(f"evaluate: no CSV file under {args.test}")
    test = np.vstack([np.loadtxt(p, delimiter=",", ndmin=2) for p in files])
    result = evaluate(load_model(args.model), test)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "metrics.json").write_text(json.dumps(result, indent=2, sort_keys=True))
    print("evaluate: " + ", ".join(f"{k}={v}" for k, v in result.items() if k != "confusion_matrix"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
