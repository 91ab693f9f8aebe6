"""The step cache's key, its explanations of misses, and its storage rules (no Docker, no S3:
the inputs come from an in-memory stand-in for channels.S3Data)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time

import pytest

from harness.emulator.sagemaker import channels, step_cache
from harness.emulator.sagemaker.runner import JobSpec
from mlharness.kinds import ENDPOINT, PROCESSING, TRAINING


class Objects:
    """channels.S3Data's reading side over a dict of s3:// URI -> bytes."""

    def __init__(self, objects: dict[str, bytes]):
        self.store = dict(objects)

    def objects(self, uri: str, data_type: str = "S3Prefix") -> list[channels.S3Object]:
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        found = [
            channels.S3Object(bucket, key, channels.relative_path(key, prefix))
            for key in sorted(k.removeprefix(f"s3://{bucket}/") for k in self.store if k.startswith(uri))
        ]
        if not found:
            raise channels.DataError(f"ClientError: No S3 objects found under S3 URL {uri}")
        return found

    def read(self, item: channels.S3Object) -> bytes:
        return self.store[f"s3://{item.bucket}/{item.key}"]


def training(name: str = "run-1-train", hyperparameters: dict | None = None, **request) -> JobSpec:
    body = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": "trainer:latest", "TrainingInputMode": "File"},
        "HyperParameters": {"C": "1.0", "sagemaker_program": '"train.py"'} | (hyperparameters or {}),
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://b/{name}/train"}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://b/{name}/model"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "Tags": [{"Key": "run", "Value": name}],
    } | request
    return JobSpec(
        TRAINING, name, f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}", "us-east-1", body
    )


def train_data(name: str, rows: dict[str, bytes] | None = None) -> dict[str, bytes]:
    rows = rows or {"a.csv": b"1,2\n", "b.csv": b"3,4\n"}
    return {f"s3://b/{name}/train/{path}": body for path, body in rows.items()}


def test_the_key_leaves_out_the_job_name_tags_and_output_locations_but_keys_inputs_by_content():
    first = step_cache.key_of(training("run-1-train"), Objects(train_data("run-1-train")), "sha256:img")
    second = step_cache.key_of(training("run-2-train"), Objects(train_data("run-2-train")), "sha256:img")
    assert first.digest == second.digest
    assert first.fields["input train"] == {
        "a.csv": hashlib.sha256(b"1,2\n").hexdigest(),
        "b.csv": hashlib.sha256(b"3,4\n").hexdigest(),
    }
    changed = Objects(train_data("run-2-train", {"a.csv": b"9,9\n", "b.csv": b"3,4\n"}))
    assert step_cache.key_of(training("run-2-train"), changed, "sha256:img").digest != first.digest


def test_the_image_instances_and_hyperparameters_are_part_of_the_key():
    data = Objects(train_data("j"))
    base = step_cache.key_of(training("j"), data, "sha256:img").digest
    assert step_cache.key_of(training("j"), data, "sha256:other").digest != base
    assert step_cache.key_of(training("j", {"C": "0.5"}), data, "sha256:img").digest != base
    bigger = training("j", ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2})
    assert step_cache.key_of(bigger, data, "sha256:img").digest != base


def test_an_s3_uri_in_a_hyperparameter_is_keyed_by_what_it_holds():
    """The SDK puts each job's code at s3://bucket/<job name>/source/sourcedir.tar.gz."""
    objects = train_data("j1") | train_data("j2")
    objects |= {f"s3://b/{n}/source/sourcedir.tar.gz": b"code" for n in ("j1", "j2")}
    data = Objects(objects)
    keys = [
        step_cache.key_of(
            training(n, {"sagemaker_submit_directory": json.dumps(f"s3://b/{n}/source/sourcedir.tar.gz")}),
            data,
            "sha256:img",
        )
        for n in ("j1", "j2")
    ]
    assert keys[0].digest == keys[1].digest
    data.store["s3://b/j2/source/sourcedir.tar.gz"] = b"new code"
    changed = step_cache.key_of(
        training("j2", {"sagemaker_submit_directory": '"s3://b/j2/source/sourcedir.tar.gz"'}),
        data,
        "sha256:img",
    )
    assert changed.digest != keys[0].digest


def test_an_s3_uri_holding_nothing_is_a_location_not_part_of_the_digest():
    data = Objects(train_data("j1") | train_data("j2"))
    keys = [
        step_cache.key_of(training(n, {"report_to": f"s3://b/{n}/report"}), data, "sha256:img")
        for n in ("j1", "j2")
    ]
    assert keys[0].digest == keys[1].digest
    assert keys[1].locations == {"hyperparameters.report_to": "s3://b/j2/report"}


def test_jobs_that_keep_checkpoints_are_not_cached():
    spec = training("j", CheckpointConfig={"S3Uri": "s3://b/ckpt"})
    assert step_cache.key_of(spec, Objects(train_data("j")), "sha256:img") is None
    assert "checkpoints" in step_cache.why_uncacheable(spec)


def test_processing_arguments_are_keyed_one_by_one_and_a_change_is_named(tmp_path):
    def processing(name: str, arguments: list[str]) -> JobSpec:
        body = {
            "ProcessingJobName": name,
            "AppSpecification": {
                "ImageUri": "img",
                "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/evaluate.py"],
                "ContainerArguments": arguments,
            },
            "ProcessingResources": {
                "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}
            },
            "ProcessingInputs": [
                {
                    "InputName": "code",
                    "S3Input": {"S3Uri": "s3://b/code", "LocalPath": "/opt/ml/processing/input/code"},
                }
            ],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": "metrics",
                        "S3Output": {"S3Uri": f"s3://b/{name}/out", "LocalPath": "/opt/ml/processing/output"},
                    }
                ]
            },
        }
        return JobSpec(PROCESSING, name, f"arn:{name}", "us-east-1", body)

    data = Objects({"s3://b/code/evaluate.py": b"print(1)"})
    cache = step_cache.StepCache(tmp_path)
    first = step_cache.key_of(processing("p1", ["--threshold", "0.7"]), data, "sha256:img")
    cache.store(first, "p1", [], {})
    second = step_cache.key_of(processing("p2", ["--threshold", "0.8"]), data, "sha256:img")
    assert cache.find(second) is None
    assert cache.explain_miss(second) == "differs from job p1: app.ContainerArguments[1]: 0.7 -> 0.8"
    data.store["s3://b/code/evaluate.py"] = b"print(2)"
    third = step_cache.key_of(processing("p3", ["--threshold", "0.7"]), data, "sha256:img")
    assert cache.explain_miss(third) == "differs from job p1: input code: 1 object changed (evaluate.py)"


def test_a_miss_names_the_differences_from_the_nearest_run_of_the_same_step(tmp_path):
    cache = step_cache.StepCache(tmp_path)
    data = Objects(train_data("j"))
    assert (
        cache.explain_miss(step_cache.key_of(training("j"), data, "sha256:img"))
        == "no earlier run of this step"
    )
    cache.store(step_cache.key_of(training("j"), data, "sha256:img"), "job-one", [], {})
    cache.store(
        step_cache.key_of(training("j", {"C": "0.1", "max_iter": "9"}), data, "sha256:img"), "job-two", [], {}
    )
    wanted = step_cache.key_of(training("j", {"C": "0.5"}), data, "sha256:img")
    assert cache.explain_miss(wanted) == "differs from job job-one: hyperparameters.C: 1.0 -> 0.5"
    more = Objects(
        train_data("j", {"a.csv": b"x", "b.csv": b"3,4\n", "c.csv": b"", "d.csv": b"", "e.csv": b""})
    )
    assert cache.explain_miss(step_cache.key_of(training("j"), more, "sha256:img")) == (
        "differs from job job-one: input train: 1 object changed (a.csv), "
        "3 objects added (c.csv, d.csv, e.csv)"
    )
    other_step = step_cache.key_of(training("j", {"sagemaker_program": '"other.py"'}), data, "sha256:img")
    assert cache.explain_miss(other_step) == "no earlier run of this step"


def test_a_miss_after_a_failed_job_names_that_job_which_is_never_served(tmp_path):
    cache = step_cache.StepCache(tmp_path)
    data = Objects(train_data("j"))
    broken = step_cache.key_of(training("j", {"C": "-1"}), data, "sha256:img")
    cache.note_unfinished(broken, "job-broken", "Failed")
    assert cache.find(broken) is None
    assert cache.explain_miss(broken) == "the same as job job-broken, which failed (such jobs are not cached)"
    fixed = step_cache.key_of(training("j", {"C": "0.5"}), data, "sha256:img")
    assert cache.explain_miss(fixed) == "differs from job job-broken (Failed): hyperparameters.C: -1 -> 0.5"
    cache.store(step_cache.key_of(training("j"), data, "sha256:img"), "job-done", [], {})
    assert (
        cache.explain_miss(fixed) == "differs from job job-done: hyperparameters.C: 1.0 -> 0.5"
    )  # as near, newer
    assert (
        step_cache.StepCache(tmp_path).explain_miss(broken).startswith("the same as job job-broken")
    )  # kept
    cache.clear()
    assert cache.explain_miss(broken) == "no earlier run of this step"


def test_a_hit_gives_the_recorded_outputs_and_survives_a_new_cache_object(tmp_path):
    key = step_cache.key_of(training("j"), Objects(train_data("j")), "sha256:img")
    step_cache.StepCache(tmp_path).store(
        key, "job-one", [({"role": "model"}, b"model bytes")], {"metrics": [["m", 1.0]]}
    )
    reopened = step_cache.StepCache(tmp_path)  # as after a restart of the local AWS
    entry = reopened.find(key)
    assert entry["job"] == "job-one" and entry["extra"] == {"metrics": [["m", 1.0]]}
    assert [reopened.read(output) for output in entry["outputs"]] == [b"model bytes"]


def test_an_entry_whose_output_vanished_or_changed_is_a_miss(tmp_path):
    cache = step_cache.StepCache(tmp_path)
    key = step_cache.key_of(training("j"), Objects(train_data("j")), "sha256:img")
    cache.store(key, "job-one", [({"role": "model"}, b"model bytes")], {})
    blob = tmp_path / "blobs" / hashlib.sha256(b"model bytes").hexdigest()
    blob.write_bytes(b"model bytez")  # same size, other bytes
    assert cache.find(key) is None
    assert "expired or its outputs are gone" in cache.explain_miss(key)
    blob.unlink()
    assert cache.find(key) is None


@pytest.mark.parametrize(
    "damage",
    [
        "[]",
        '{"outputs": 5}',
        "not json {",
        lambda e: e | {"created": "yesterday"},
        lambda e: e | {"outputs": [{"role": "model", "blob": "../../../etc/passwd"}]},
        lambda e: e | {"outputs": [{"role": "location", "blob": e["outputs"][0]["blob"]}]},
        lambda e: e | {"extra": {"metrics": [["m"]]}},
    ],
    ids=["a list", "outputs a number", "not JSON", "a string time", "a blob path", "no field", "a metric"],
)
def test_a_damaged_entry_is_moved_aside_and_the_job_runs_as_on_a_miss(tmp_path, damage, caplog):
    cache = step_cache.StepCache(tmp_path)
    key = step_cache.key_of(training("j"), Objects(train_data("j")), "sha256:img")
    cache.store(key, "job-one", [({"role": "model"}, b"model bytes")], {"metrics": [["m", 1.0]]})
    path = tmp_path / "entries" / f"{key.digest}.json"
    entry = json.loads(path.read_text())
    path.write_text(damage if isinstance(damage, str) else json.dumps(damage(entry)))
    with caplog.at_level(logging.WARNING):
        assert cache.find(key) is None
    assert cache.entries() == [] and cache.explain_miss(key) == "no earlier run of this step"
    [aside] = (tmp_path / "entries").glob(f"{key.digest}.json.damaged-*")
    assert f"{path} is damaged" in caplog.text and str(aside) in caplog.text
    cache.store(key, "job-two", [({"role": "model"}, b"model bytes")], {})  # the rerun is kept
    assert cache.find(key)["job"] == "job-two"


def test_a_damaged_record_of_an_unfinished_job_is_moved_aside(tmp_path):
    cache = step_cache.StepCache(tmp_path)
    key = step_cache.key_of(training("j"), Objects(train_data("j")), "sha256:img")
    cache.note_unfinished(key, "job-broken", "Failed")
    (tmp_path / "unfinished" / f"{key.digest}.json").write_text('{"step": 5}')
    assert cache.explain_miss(key) == "no earlier run of this step"
    assert list((tmp_path / "unfinished").glob("*.damaged-*"))


def test_entries_expire(tmp_path):
    key = step_cache.key_of(training("j"), Objects(train_data("j")), "sha256:img")
    step_cache.StepCache(tmp_path).store(key, "job-one", [], {})
    assert step_cache.StepCache(tmp_path, expire_after=3600).find(key) is not None
    entry_file = tmp_path / "entries" / f"{key.digest}.json"
    entry = json.loads(entry_file.read_text())
    entry["created"] = time.time() - 7200
    entry_file.write_text(json.dumps(entry))
    assert step_cache.StepCache(tmp_path, expire_after=3600).find(key) is None
    assert step_cache.StepCache(tmp_path).find(key) is not None


def test_the_least_recently_used_entries_go_beyond_the_size_limit(tmp_path):
    cache = step_cache.StepCache(tmp_path, max_bytes=350)
    keys = {}
    for index, name in enumerate(("old", "used", "new")):
        keys[name] = step_cache.key_of(
            training("j", {"C": str(index)}), Objects(train_data("j")), "sha256:img"
        )
        cache.store(keys[name], name, [({"role": "model"}, name.encode() * 40)], {})
        if name == "used":
            time.sleep(0.01)
            assert cache.find(keys["old"]) is not None  # "old" is now more recently used than "used"
    assert cache.find(keys["used"]) is None
    assert cache.find(keys["old"]) is not None and cache.find(keys["new"]) is not None
    assert cache.size() <= 350
    assert len(os.listdir(tmp_path / "blobs")) == 2  # the evicted entry's blob went with it


def test_clear_removes_every_entry_and_blob(tmp_path):
    cache = step_cache.StepCache(tmp_path)
    key = step_cache.key_of(training("j"), Objects(train_data("j")), "sha256:img")
    cache.store(key, "job-one", [({"role": "model"}, b"m")], {})
    assert cache.clear() == 1
    assert cache.entries() == [] and cache.size() == 0 and cache.find(key) is None


def test_only_processing_training_and_transform_jobs_are_keyed():
    spec = JobSpec(ENDPOINT, "e", "arn:e", "us-east-1", {})
    assert step_cache.key_of(spec, Objects({}), "sha256:img") is None


def test_a_gzip_file_is_keyed_by_what_it_holds_not_its_header_timestamp():
    import gzip

    first, second = (gzip.compress(b"same code", mtime=stamp) for stamp in (1, 2))
    assert first != second
    assert step_cache.content_digest(first) == step_cache.content_digest(second)
    assert step_cache.content_digest(first) != step_cache.content_digest(gzip.compress(b"new code", mtime=1))
    assert step_cache.content_digest(b"\x1f\x8bnot gzip") == hashlib.sha256(b"\x1f\x8bnot gzip").hexdigest()


def test_a_code_bundle_keys_a_step_by_the_files_its_program_loads(tmp_path):
    """Fixing the evaluate script leaves the training step's key as it was."""
    import io
    import tarfile

    def bundle(evaluate: str) -> bytes:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for name, text in {"jobs/train.py": "import json\n", "jobs/evaluate.py": evaluate}.items():
                info = tarfile.TarInfo(name)
                info.size = len(text.encode())
                tar.addfile(info, io.BytesIO(text.encode()))
        return raw.getvalue()

    def key(evaluate: str, program: str):
        data = Objects(train_data("j") | {"s3://b/code/bundle.tar.gz": bundle(evaluate)})
        hyperparameters = {
            "sagemaker_program": json.dumps(program),
            "sagemaker_submit_directory": json.dumps("s3://b/code/bundle.tar.gz"),
        }
        return step_cache.key_of(training("j", hyperparameters), data, "sha256:img")

    broken, fixed = key("raise SystemExit(1)\n", "jobs/train.py"), key("print('ok')\n", "jobs/train.py")
    assert broken.digest == fixed.digest
    assert list(fixed.fields["hyperparameters.sagemaker_submit_directory"]) == ["jobs/train.py"]
    cache = step_cache.StepCache(tmp_path)
    cache.store(key("raise SystemExit(1)\n", "jobs/evaluate.py"), "before", [], {})
    assert cache.explain_miss(key("print('ok')\n", "jobs/evaluate.py")) == (
        "differs from job before: hyperparameters.sagemaker_submit_directory: "
        "1 object changed (jobs/evaluate.py)"
    )


class ListedObjects(Objects):
    """Objects listed with an ETag (the MD5 of their bytes, as S3's), counting reads."""

    def __init__(self, objects: dict[str, bytes]):
        super().__init__(objects)
        self.reads: list[str] = []

    def objects(self, uri: str, data_type: str = "S3Prefix") -> list[channels.S3Object]:
        return [
            channels.S3Object(o.bucket, o.key, o.relative, f'"{hashlib.md5(self.read(o)).hexdigest()}"')  # noqa: S324
            for o in super().objects(uri, data_type)
        ]

    def read(self, item: channels.S3Object) -> bytes:
        if item.etag:  # a read by the key's computation, not by the listing above
            self.reads.append(item.key)
        return super().read(item)


def test_an_object_with_an_etag_seen_before_is_keyed_without_downloading_it_again():
    rows = {"a.csv": b"digest once " + os.urandom(8), "b.csv": b"3,4\n" + os.urandom(8)}
    data = ListedObjects(train_data("run-1-train", rows) | train_data("run-2-train", rows))
    first = step_cache.key_of(training("run-1-train"), data, "sha256:img")
    assert sorted(data.reads) == ["run-1-train/train/a.csv", "run-1-train/train/b.csv"]

    # the same bytes at another path (outputs the cache copied): the same key, nothing read
    second = step_cache.key_of(training("run-2-train"), data, "sha256:img")
    assert second.digest == first.digest and len(data.reads) == 2

    data.store["s3://b/run-2-train/train/b.csv"] = b"changed " + os.urandom(8)  # a new ETag: read again
    third = step_cache.key_of(training("run-2-train"), data, "sha256:img")
    assert third.digest != first.digest and data.reads[2:] == ["run-2-train/train/b.csv"]
