from harness import records


def make(run_id: str, status: str, pipeline: str = "training", started: str = "2026-01-01T00:00:00+00:00"):
    return records.RunRecord(
        run_id=run_id, pipeline=pipeline, env="test", target="local", status=status, started_at=started,
        prefix=f"s3://b/runs/{run_id}", data={}, code={}, image={}, parameters={}, definition_sha256="x",
        state_machine_arn="arn",
    )  # fmt: skip


def test_records_round_trip_and_the_latest_successful_run_is_found(tmp_path):
    records.save(make("training-1", "SUCCEEDED", started="2026-01-01T00:00:01+00:00"), records_dir=tmp_path)
    records.save(make("training-2", "FAILED", started="2026-01-01T00:00:02+00:00"), records_dir=tmp_path)
    records.save(make("training-3", "SUCCEEDED", started="2026-01-01T00:00:03+00:00"), records_dir=tmp_path)
    (tmp_path / "test" / "junk.json").write_text("{not json")
    assert [r.run_id for r in records.load_all("test", tmp_path)] == [
        "training-1",
        "training-2",
        "training-3",
    ]
    assert records.latest_successful("test", "training", tmp_path).run_id == "training-3"
    assert records.find("test", "training-2", tmp_path).status == "FAILED"


def test_run_ids_are_unique_and_fit_job_names():
    ids = {records.new_run_id("inference") for _ in range(50)}
    assert len(ids) == 50
    assert all(len(f"{i}-preprocess") <= 63 for i in ids)


def test_executions_the_harness_names_are_told_from_others():
    run_id = records.new_run_id("inference")
    assert records.started_by_harness(run_id.split("-", 1)[1])
    assert not records.started_by_harness("3f1c9a4e-8a41-4c1e-9e0b-2d1f5a6b7c8d")  # EventBridge's
