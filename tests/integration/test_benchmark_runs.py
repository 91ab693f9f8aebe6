"""The benchmark script keeps working: it runs every variant and prints medians and ratios.
(Its figures are measured for the notes, never asserted: the machine is shared and noisy.)"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests import ROOT

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_the_benchmark_runs_every_variant_and_prints_the_table(job_image):
    result = subprocess.run(
        [sys.executable, "benchmarks/pipelines_benchmark.py", "--sizes", "300", "--repeats", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    variants = (
        "(a) local target, cold",
        "(a') the same again: all served from the step cache",
        "(a'') one hyperparameter changed",
        "(b) floor",
        "(c) SageMaker Pipelines local mode",
    )
    for variant in variants:
        assert re.search(rf"^\s+300  {re.escape(variant)}.*\s\d+\.\ds\s+\d+\.\d\dx", result.stdout, re.M), (
            variant
        )
    assert re.search(r"\(a\) is \d+\.\d\dx (faster|slower) than \(c\)", result.stdout)
    per_hop = result.stdout.split("per hop, (a) at 300 rows", 1)[1]
    for hop in ("container started -> its first line", "Describe Completed -> .sync Task succeeded"):
        assert re.search(rf"  {re.escape(hop)}\s+\d+ ms  \(\d+ jobs\)", per_hop), hop
