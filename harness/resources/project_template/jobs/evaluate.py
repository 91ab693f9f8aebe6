"""Evaluate: the trained model's AUC and accuracy on the test rows, as metrics.json."""

from __future__ import annotations

import json
import tarfile
import tempfile
from pathlib import Path

import joblib
import numpy as np
from sklearn import metrics

PROCESSING = Path("/opt/ml/processing")


def main() -> None:
    with tempfile.TemporaryDirectory() as unpacked:
        with tarfile.open(next((PROCESSING / "input" / "model").rglob("model.tar.gz"))) as archive:
            # the "data" filter (no links, no paths outside) exists from Python 3.11.4 on
            archive.extractall(unpacked, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        model = joblib.load(Path(unpacked) / "model.joblib")
    test = np.vstack(
        [np.loadtxt(p, delimiter=",", ndmin=2) for p in (PROCESSING / "input" / "test").rglob("*.csv")]
    )
    truth, x = test[:, 0].astype(int), test[:, 1:]
    result = {
        "auc": round(float(metrics.roc_auc_score(truth, model.predict_proba(x)[:, 1])), 6),
        "accuracy": round(float(metrics.accuracy_score(truth, model.predict(x))), 6),
        "test_rows": int(len(truth)),
    }
    out = PROCESSING / "output"
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(result))
    print(f"evaluate: {result}")


if __name__ == "__main__":
    main()
