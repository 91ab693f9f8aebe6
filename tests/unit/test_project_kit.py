"""A team's project without Docker: `init` writes one that loads and builds, named inputs are
resolved, checked and uploaded by content, and a project's code ships from its own folder."""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from harness import build, config, inputs, scaffold
from harness.errors import HarnessError
from tests.projects import write_project


@pytest.fixture
def new_project(tmp_path):
    written = scaffold.init(tmp_path / "Churn Team")
    yield written
    for name in [m for m in sys.modules if m.split(".")[0] in ("pipelines", "jobs", "data")]:
        sys.modules.pop(name)  # the example project's own are imported again by the next test


def test_init_writes_a_project_that_loads_and_builds_offline(new_project):
    assert new_project.name == "churn-team"
    written = {p.relative_to(new_project.root).as_posix() for p in new_project.files}
    assert {
        "mlharness.yaml",
        "pipelines/churn.py",
        "jobs/preprocess.py",
        "images/trainer/Dockerfile",
        "tests/test_churn.py",
        "tox.ini",
        ".github/workflows/ci.yml",
        ".gitignore",
        "requirements-dev.txt",
    } <= written
    assert (new_project.root / "images" / "trainer" / "train").stat().st_mode & 0o111
    loaded = config.load("local", project=new_project.root)
    assert loaded.pipeline_names() == ["churn"] and loaded.stack_name == "churn-team-local"
    files = build.render(loaded)
    template = yaml.safe_load(files["template.yaml"])
    assert {"JobImageUri", "TrainerImageUri"} <= set(
        template["Parameters"]
    )  # its own image and the job image
    definition = json.loads(files["churn.asl.json"])
    assert definition["States"]["Train"]["Parameters"]["AlgorithmSpecification"]["TrainingImage"] == (
        "${TrainerImageUri}"
    )
    assert build.render(loaded) == files  # deterministic


@pytest.mark.parametrize("present", ["README.md", "data"])
def test_init_refuses_a_folder_that_is_not_empty_and_writes_nothing(tmp_path, present):
    (tmp_path / present).mkdir() if present == "data" else (tmp_path / present).write_text("x")
    with pytest.raises(HarnessError, match=f"is not empty \\({present}\\): init writes a new project"):
        scaffold.init(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [present]


def test_init_takes_a_folder_git_made_and_refuses_a_name_it_cannot_use(tmp_path):
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    assert scaffold.init(tmp_path / "repo").name == "repo"
    with pytest.raises(HarnessError, match="project name '9'"):
        scaffold.init(tmp_path / "other", name="9")
    assert not (tmp_path / "other").exists()


def _census_project(tmp_path, body=""):
    return write_project(tmp_path, body, pipelines=["pipelines.training", "pipelines.inference"])


def test_a_named_input_is_generated_once_and_checked_by_every_pipeline_taking_it(tmp_path):
    loaded = config.load("local", ["inputs.data.generate.rows=200"], project=_census_project(tmp_path))
    given = inputs.checked(loaded, loaded.pipelines)
    assert list(given) == ["data"] and given["data"].generated
    assert given["data"].path.is_relative_to(tmp_path / ".mlharness" / "inputs")
    assert inputs.checked(loaded, loaded.pipelines)["data"].path == given["data"].path  # kept


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "input data: .*nowhere.csv does not exist"),
        ("", "data file .* is empty"),
        ("age,income\n1,x\n", "lacks column"),
    ],
)
def test_a_given_input_is_refused_in_one_line_before_anything_runs(tmp_path, content, message):
    path = tmp_path / "nowhere.csv"
    if content is not None:
        path.write_text(content)
    loaded = config.load("local", project=_census_project(tmp_path / "p"), inputs={"data": path})
    with pytest.raises(HarnessError, match=message) as raised:
        inputs.checked(loaded, loaded.pipelines)
    assert "\n" not in str(raised.value)


def test_an_input_neither_given_nor_generated_says_how_to_give_it(tmp_path):
    (tmp_path / "needs_input.py").write_text(
        "import dataclasses\n"
        "from mlharness import Input\n"
        "from pipelines import inference\n"
        "PIPELINE = dataclasses.replace(inference.PIPELINE, name='score', prefix='score', schedule=None,\n"
        "                               inputs=(Input('customers', kind='folder'),))\n"
    )
    project = write_project(tmp_path, pipelines=["pipelines.training", "needs_input.py"])
    loaded = config.load("local", project=project)
    with pytest.raises(
        HarnessError, match=r"takes input 'customers': give it as inputs.customers in mlharness"
    ):
        inputs.checked(loaded, [loaded.pipeline("score")])
    assert inputs.checked(loaded, [loaded.pipeline("score")], required=False) == {}
    sys.modules.pop("needs_input", None)


def test_inputs_are_uploaded_under_the_sha256_of_their_content(tmp_path):
    from moto import mock_aws

    folder = tmp_path / "tables"
    (folder / "b").mkdir(parents=True)
    (folder / "a.csv").write_text("a\n1\n")
    (folder / "b" / "c.csv").write_text("c\n2\n")
    with mock_aws():
        import boto3

        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="artifacts")
        first = inputs.upload(s3, "artifacts", inputs.Given("tables", "folder", folder))
        again = inputs.upload(s3, "artifacts", inputs.Given("tables", "folder", folder))
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="artifacts")["Contents"])
        assert first == again and first.uri == f"s3://artifacts/inputs/{first.sha256}/"
        assert keys == [f"inputs/{first.sha256}/a.csv", f"inputs/{first.sha256}/b/c.csv"]
        (folder / "a.csv").write_text("a\n3\n")
        assert inputs.upload(s3, "artifacts", inputs.Given("tables", "folder", folder)).sha256 != first.sha256
        single = inputs.upload(s3, "artifacts", inputs.Given("one", "file", folder / "a.csv"))
        assert single.uri.endswith(f"/inputs/{single.sha256}/") and single.recorded()["path"].endswith(
            "a.csv"
        )
