"""The job scripts and the feature module, run as plain processes on small data."""

import json
import subprocess
import sys

import numpy as np
import pytest

from pipelines import data as pipeline_data
from preprocessing import census, features
from tests import ROOT


def run_job(*args):
    result = subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result


def test_generated_data_is_deterministic_and_has_signal():
    first, second = census.generate(500, seed=3), census.generate(500, seed=3)
    assert first.equals(second)
    assert list(first.columns) == census.COLUMNS
    assert 0.2 < (first[census.LABEL] == census.INCOME_HIGH).mean() < 0.8


def test_training_and_inference_share_the_fitted_transformer(tmp_path):
    frame = census.generate(600, seed=1)
    transformer, train, test = features.fit(frame, test_size=0.25, seed=1)
    features.save(transformer, tmp_path)
    again = features.transform(frame.drop(columns=[census.LABEL]), features.load(tmp_path))
    assert again.shape[1] == train.shape[1] - 1
    assert np.allclose(features.transform(frame, transformer), again)


def test_jobs_run_end_to_end_as_plain_processes(tmp_path):
    data = tmp_path / "data"
    pipeline_data.generate(data / "census.csv", rows=2000, seed=5)
    out, model, evaluation, inference = (tmp_path / d for d in ("out", "model", "eval", "inference"))
    run_job("jobs.preprocess", "fit", "--data", str(data), "--output", str(out))
    run_job("jobs.train", "--train", str(out / "train"), "--model-dir", str(model))
    run_job("jobs.evaluate", "--model", str(model), "--test", str(out / "test"), "--output", str(evaluation))
    metrics = json.loads((evaluation / "metrics.json").read_text())
    assert set(metrics) >= {"accuracy", "precision", "recall", "f1", "roc_auc", "confusion_matrix"}
    assert metrics["roc_auc"] > 0.7
    run_job("jobs.preprocess", "transform", "--data", str(data), "--transformer", str(out / "transformer"),
            "--output", str(inference))  # fmt: skip
    assert len((inference / "features" / "census.csv").read_text().splitlines()) == 2000


def test_a_file_without_the_census_columns_is_refused_in_one_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("age,education\n1,x\n")
    with pytest.raises(pipeline_data.DataError, match="lacks column.*'major industry code'"):
        pipeline_data.check(bad)
    with pytest.raises(pipeline_data.DataError, match="does not exist"):
        pipeline_data.check(tmp_path / "absent.csv")


def test_commands_generating_the_same_sample_at_once_each_finish_and_leave_one_file(tmp_path):
    import concurrent.futures

    target = tmp_path / "data" / "census-500-7.csv"
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        written = list(pool.map(lambda _: pipeline_data.generate(target, 500, 7), range(4)))
    assert written == [target] * 4
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temporary file left
    assert target.read_bytes() == pipeline_data.generate(tmp_path / "again.csv", 500, 7).read_bytes()
