"""Which files of a code archive a program can load (what the step cache keys a job's code by)."""

from __future__ import annotations

import io
import tarfile

from harness.emulator.sagemaker import python_imports


def archive(files: dict[str, str], gzip: bool = True) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz" if gzip else "w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


BUNDLE = {
    "jobs/__init__.py": "",
    "jobs/preprocess.py": "import argparse\nfrom preprocessing import features\n",
    "jobs/train.py": "import json\nimport helpers\n",
    "jobs/helpers.py": "X = 1\n",
    "jobs/evaluate.py": "from sklearn import metrics\nfrom .shared import score\n",
    "jobs/shared.py": "import preprocessing.census as census\n",
    "preprocessing/__init__.py": "",
    "preprocessing/features.py": "from . import census\n",
    "preprocessing/census.py": "COLUMNS = []\n",
    "preprocessing/unused.py": "",
    "config/settings.json": "{}",
}


def test_an_archive_of_python_sources_is_read_by_member_and_anything_else_is_not():
    members = python_imports.archive_members(archive(BUNDLE))
    assert members["jobs/train.py"] == b"import json\nimport helpers\n"
    assert python_imports.archive_members(archive({"data.csv": "1,2"})) is None
    assert python_imports.archive_members(b"plain bytes") is None
    assert python_imports.archive_members(archive(BUNDLE, gzip=False)) is not None


def test_a_program_loads_its_import_closure_with_packages_and_every_non_python_file():
    members = {name: text.encode() for name, text in BUNDLE.items()}
    assert python_imports.loadable(members, ["/opt/ml/processing/input/code/jobs/preprocess.py"]) == {
        "jobs/preprocess.py",
        "preprocessing/__init__.py",
        "preprocessing/features.py",
        "preprocessing/census.py",  # `from . import census`
        "config/settings.json",
    }
    # a script's own folder is on its path; relative imports resolve from its package
    assert python_imports.loadable(members, ["jobs/train.py"]) == {
        "jobs/train.py",
        "jobs/helpers.py",
        "config/settings.json",
    }
    assert python_imports.loadable(members, ["jobs/evaluate.py"]) == {
        "jobs/evaluate.py",
        "jobs/shared.py",
        "preprocessing/__init__.py",
        "preprocessing/census.py",
        "config/settings.json",
    }


def test_no_program_among_the_members_means_every_member_counts():
    members = {name: text.encode() for name, text in BUNDLE.items()}
    assert python_imports.loadable(members, ["other/entry.py"]) is None
    assert python_imports.loadable(members, []) is None
