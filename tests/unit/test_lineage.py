"""A run's lineage from the records: what made it, upstream through the artifacts it consumed,
and the runs that used what it produced; an artifact found by its URI."""

from __future__ import annotations

import pytest

from harness import cli, config, lineage, records


def run(run_id, pipeline, *, consumed=None, produced=None, status="SUCCEEDED", **more):
    return records.RunRecord(
        run_id=run_id, pipeline=pipeline, env="local", target="local", status=status,
        started_at=f"2026-01-0{run_id[-1]}T00:00:00+00:00", prefix=f"s3://b/runs/{run_id}",
        project={"name": "p", "git_revision": "abc123", "git_dirty": run_id.endswith("3")},
        inputs={"data": {"path": "data.csv", "uri": "s3://b/inputs/f00d/", "sha256": "f00d"}},
        code={"uri": "s3://b/code/c0de.tar.gz", "sha256": "c0de"},
        images={"job": {"reference": "123.dkr.ecr.us-east-1.amazonaws.com/job@sha256:1234"}},
        parameters={"C": 1.0}, definition_sha256="x", state_machine_arn="arn",
        consumed=consumed or {}, produced=produced or {}, **more,
    )  # fmt: skip


MODEL = {"RunId": "training-1", "ModelArtifactUri": "s3://b/runs/training-1/model/model.tar.gz"}
RUNS = [
    run("training-1", "training", produced={"model": MODEL}, metrics={"auc": 0.9}),
    run("inference-2", "inference", consumed={"model": "training-1"}),
    run("inference-3", "inference", consumed={"model": "training-1"}, status="FAILED"),
    run("training-4", "training", produced={"model": {**MODEL, "RunId": "training-4"}}),
]


def test_a_consuming_run_leads_back_to_the_run_that_made_its_model_with_its_data_code_and_image():
    found = lineage.of("inference-2", RUNS)
    assert [(kind, made.run.run_id) for kind, made in found.made_by] == [("model", "training-1")]
    text = "\n".join(lineage.lines(found))
    assert "consumed the model of:\n    run training-1 (training, SUCCEEDED" in text
    assert "input data: sha256 f00d" in text and "revision abc123" in text
    assert "image job: 123.dkr.ecr.us-east-1.amazonaws.com/job@sha256:1234" in text


def test_a_model_named_by_its_uri_lists_every_run_that_used_it():
    found = lineage.of(MODEL["ModelArtifactUri"], RUNS)
    assert found.artifact == "model" and found.run.run_id == "training-1"
    assert [user.run_id for _, user in found.used_by] == ["inference-2", "inference-3"]
    text = "\n".join(lineage.lines(found))
    assert text.startswith("the model of run training-1")
    assert "its model used by run inference-3 (inference, FAILED)" in text
    assert "metrics: auc=0.9" in text


def test_a_name_that_is_neither_a_run_nor_an_artifact_is_refused():
    with pytest.raises(lineage.UnknownRun, match="nope is neither a recorded run nor a URI"):
        lineage.of("nope", RUNS)


def test_the_lineage_command_prints_it_or_one_line(tmp_path, capsys):
    project = tmp_path / "churn"
    assert cli.main(["init", str(project)]) == 0
    settings = config.load("local", [], project)
    for record in RUNS:
        records.save(record, settings.records_dir)
    capsys.readouterr()
    assert cli.main(["lineage", "inference-3", "--project", str(project)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("run inference-3 (inference, FAILED") and "(with uncommitted changes)" in out
    assert cli.main(["lineage", "s3://elsewhere", "--project", str(project)]) == 1
    assert capsys.readouterr().err.strip() == (
        "error: s3://elsewhere is neither a recorded run nor a URI of an artifact a recorded run produced "
        "(environment local)"
    )
