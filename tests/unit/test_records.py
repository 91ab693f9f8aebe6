import json

from harness import records


def make(run_id: str, status: str, pipeline: str = "training", started: str = "2026-01-01T00:00:00+00:00",
         produced: dict | None = None):  # fmt: skip
    return records.RunRecord(
        run_id=run_id, pipeline=pipeline, env="test", target="local", status=status, started_at=started,
        prefix=f"s3://b/runs/{run_id}", project={}, inputs={}, code={}, images={},
        parameters={}, definition_sha256="x",
        state_machine_arn="arn", produced=produced or {},
    )  # fmt: skip


def test_records_round_trip_and_the_latest_run_producing_a_kind_is_found(tmp_path):
    model = {"model": {"RunId": "x"}}
    for n, status in enumerate(["SUCCEEDED", "SUCCEEDED", "FAILED"], start=1):
        started = f"2026-01-01T00:00:0{n}+00:00"
        records.save(make(f"training-{n}", status, started=started, produced=model), tmp_path)
    records.save(make("scoring-1", "SUCCEEDED", "scoring", "2026-01-01T00:00:09+00:00"), tmp_path)
    (tmp_path / "junk.json").write_text("{not json")
    assert [r.run_id for r in records.load_all(tmp_path)] == [
        "training-1",
        "training-2",
        "training-3",
        "scoring-1",
    ]
    assert records.latest_producing(tmp_path, "model").run_id == "training-2"
    assert records.latest_producing(tmp_path, "dataset") is None
    assert records.find(tmp_path, "training-3").status == "FAILED"


def test_version_1_records_are_read_in_todays_schema(tmp_path):
    fields = json.loads(make("training-1", "SUCCEEDED").to_json())
    for key in ("produced", "consumed", "summary", "headline", "resources"):
        del fields[key]
    artifact = "s3://b/m.tar.gz"
    trained = {**fields, "schema_version": 1, "training_run_id": None,
               "outputs": {"model_artifact_uri": artifact, "transformer_uri": "s3://b/t"}}  # fmt: skip
    scored = {**fields, "run_id": "inference-1", "pipeline": "inference", "schema_version": 1,
              "training_run_id": "training-1", "outputs": {"model_artifact_uri": artifact}}  # fmt: skip
    (tmp_path / "training-1.json").write_text(json.dumps(trained))
    (tmp_path / "inference-1.json").write_text(json.dumps(scored))
    by_id = {r.run_id: r for r in records.load_all(tmp_path)}
    assert by_id["training-1"].produced["model"]["ModelArtifactUri"] == "s3://b/m.tar.gz"
    assert by_id["inference-1"].consumed == {"model": "training-1"} and not by_id["inference-1"].produced


def test_version_2_records_keep_their_data_image_and_revision_in_todays_fields(tmp_path):
    fields = json.loads(make("training-1", "SUCCEEDED").to_json())
    for key in ("project", "inputs", "images"):
        del fields[key]
    fields |= {
        "schema_version": 2,
        "data": {"uri": "s3://b/data/abc/", "sha256": "abc"},
        "image": {"reference": "mlharness/job:1", "id": "sha256:1"},
        "code": {"uri": "s3://b/code/x.tar.gz", "sha256": "x", "git_revision": "0123abc+dirty"},
    }
    (tmp_path / "training-1.json").write_text(json.dumps(fields))
    (record,) = records.load_all(tmp_path)
    assert record.inputs == {"data": {"uri": "s3://b/data/abc/", "sha256": "abc"}}
    assert record.images == {"job": {"reference": "mlharness/job:1", "id": "sha256:1"}}
    assert record.project == {"name": None, "git_revision": "0123abc", "git_dirty": True}
    assert record.code == {"uri": "s3://b/code/x.tar.gz", "sha256": "x"}


def test_run_ids_are_unique_and_fit_job_names():
    ids = {records.new_run_id("inference") for _ in range(50)}
    assert len(ids) == 50
    assert all(len(f"{i}-preprocess") <= 63 for i in ids)


def test_executions_the_harness_names_are_told_from_others():
    run_id = records.new_run_id("inference")
    assert records.started_by_harness(run_id.split("-", 1)[1])
    assert not records.started_by_harness("3f1c9a4e-8a41-4c1e-9e0b-2d1f5a6b7c8d")  # EventBridge's


def test_a_damaged_record_is_moved_aside_with_a_warning_naming_it_and_the_rest_load(tmp_path, caplog):
    import logging

    records.save(make("training-1", "SUCCEEDED"), tmp_path)
    whole = json.loads((tmp_path / "training-1.json").read_text())
    (tmp_path / "list.json").write_text("[]")
    (tmp_path / "typed.json").write_text(json.dumps(whole | {"run_id": "training-2", "status": 5}))
    (tmp_path / "torn.json").write_text('{"run_id": "trai')
    with caplog.at_level(logging.WARNING):
        assert [r.run_id for r in records.load_all(tmp_path)] == ["training-1"]
    assert sorted(p.name.split(".json")[0] for p in tmp_path.glob("*.damaged-*")) == ["list", "torn", "typed"]
    assert "typed.json is damaged (not a run record: status not text)" in caplog.text
    assert [r.run_id for r in records.load_all(tmp_path)] == ["training-1"]  # nothing left to warn of
