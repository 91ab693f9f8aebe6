"""mlharness as a team gets it: a wheel built from this repository, installed into an
environment of its own, used from folders outside the repository. `mlharness init` writes a
project there that builds, runs on the local target and passes its own tests, offline.

The environment reuses this one's third-party packages (a path file), not its mlharness:
the wheel is the only mlharness it has, so nothing can be read from this checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import uuid
import zipfile
from pathlib import Path

import pytest

from tests import ROOT

pytestmark = [pytest.mark.docker, pytest.mark.slow]
# What this test session's environment holds that a team's shell would not.
FOREIGN = ("PYTHONPATH", "MLHARNESS_PROJECT", "MLHARNESS_HOME")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The path of a Python whose only mlharness is the wheel built from this repository."""
    work = tmp_path_factory.mktemp("installed")
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(work),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = work.glob("mlharness-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True, timeout=120)
    python = work / "venv" / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "third_party.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [python, "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    return python, wheel


def mlharness(python: Path, cwd: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in FOREIGN}
    return subprocess.run(
        [str(python.parent / "mlharness"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
    )


def test_the_wheel_holds_the_tool_and_its_data_and_no_project(installed):
    _, wheel = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert "harness/resources/images/job/Dockerfile" in names
    assert "harness/resources/images/job/bin/run-bundle" in names
    assert "harness/resources/project_template/pipelines/churn.py" in names
    assert "harness/resources/project_template/_github/workflows/ci.yml" in names
    assert "mlharness/tasks.py" in names and "harness/emulator/server.py" in names
    assert not [n for n in names if n.split("/")[0] in ("pipelines", "jobs", "preprocessing", "tests")]
    assert not [n for n in names if "wheelhouse" in n or "__pycache__" in n]


def test_the_installed_mlharness_is_not_this_checkout(installed, tmp_path):
    python, _ = installed
    found = subprocess.run(
        [python, "-c", "import harness, mlharness; print(harness.__file__); print(mlharness.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(not Path(path).is_relative_to(ROOT) for path in found), found


def test_init_then_run_and_pytest_in_the_new_project(installed, local_aws, tmp_path):
    python, _ = installed
    written = mlharness(python, tmp_path, "init", "churn")
    assert written.returncode == 0, written.stderr
    project = tmp_path / "churn"
    refused = mlharness(python, tmp_path, "init", "churn")
    assert refused.returncode == 1 and refused.stderr.startswith("error: churn is not empty")

    built = mlharness(python, project, "build")
    assert built.returncode == 0, built.stderr
    assert ".mlharness/build/local/churn.asl.json" in built.stdout

    name = f"init-{uuid.uuid4().hex[:6]}"
    port = local_aws.endpoint_url.rsplit(":", 1)[1]
    ran = mlharness(
        python, project, "run", "--target", "local",
        "--set", f"emulator.port={port}", "--set", f"stack_name={name}", "--set", f"artifact_bucket={name}",
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    assert "churn run" in ran.stdout and "SUCCEEDED" in ran.stdout
    (path,) = (project / ".mlharness" / "runs" / "local").glob("*.json")
    record = json.loads(path.read_text())
    assert set(record["images"]) == {"job", "trainer"}
    assert record["images"]["trainer"]["reference"].split("@")[0].endswith("/churn/trainer")
    assert record["inputs"]["customers"]["sha256"]

    tested = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=900,
        env={k: v for k, v in os.environ.items() if k not in FOREIGN},
    )
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-2000:]
    assert "3 passed" in tested.stdout
