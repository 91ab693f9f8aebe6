"""docs/coverage.md is what the emulator serves today, and every operation it changes is called by a test."""

from __future__ import annotations

import subprocess
import sys

from tests import ROOT

PAGE = ROOT / "docs" / "coverage.md"


def generated() -> str:
    # In a process of its own: generating installs every patch and hook the emulator installs.
    done = subprocess.run(
        [sys.executable, "-m", "harness", "emulator", "coverage"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_the_coverage_page_is_current():
    assert PAGE.read_text() == generated(), (
        "the emulator and docs/coverage.md disagree: run "
        "`python -m harness emulator coverage --output docs/coverage.md` and review the difference"
    )


def test_every_changed_operation_is_called_by_a_test():
    untested = [
        line for line in PAGE.read_text().splitlines() if line.endswith("| changed | no test calls it |")
    ]
    assert untested == []


def test_refused_operations_say_why():
    refused = [line for line in PAGE.read_text().splitlines() if "| refused |" in line]
    assert refused and all(not line.endswith("| refused |  |") for line in refused)
