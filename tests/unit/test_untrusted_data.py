"""Keys, archives and job outputs are untrusted: nothing they name is written or read outside
the job's folder, and an archive bomb is refused before it fills the scratch disk."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import boto3
import pytest
from moto import mock_aws

from harness.emulator.sagemaker import channels


@pytest.fixture
def data():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="bkt")
        yield channels.S3Data(s3, "us-east-1")


@pytest.mark.parametrize(
    "key",
    ["trav/" + "../" * 12 + "tmp/x", "trav/a/../../../x", "trav/.."],
)
def test_a_key_that_would_climb_out_of_the_job_folder_fails_naming_it(data, tmp_path, key):
    data.s3.put_object(Bucket="bkt", Key=key, Body=b"x")
    job = tmp_path / "job" / "input"
    job.mkdir(parents=True)
    with pytest.raises(channels.DataError, match="ClientError: the S3 key") as failed:
        data.download(data.objects("s3://bkt/trav/"), job)
    assert repr(key) in str(failed.value)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["input", "job"]  # nothing written


def test_empty_and_absolute_looking_segments_stay_inside(data, tmp_path):
    data.s3.put_object(Bucket="bkt", Key="trav//tmp/x", Body=b"1")
    data.s3.put_object(Bucket="bkt", Key="trav/a/./b/../c", Body=b"2")
    data.download(data.objects("s3://bkt/trav/"), tmp_path)
    assert (tmp_path / "tmp" / "x").read_bytes() == b"1"
    assert (tmp_path / "a" / "c").read_bytes() == b"2"


def test_a_manifest_entry_that_climbs_out_fails_naming_it(data, tmp_path):
    data.s3.put_object(Bucket="bkt", Key="d/ok.csv", Body=b"x")
    manifest = [{"prefix": "s3://bkt/d/"}, "ok.csv", "../../../../etc/evil"]
    data.s3.put_object(Bucket="bkt", Key="m.json", Body=json.dumps(manifest).encode())
    with pytest.raises(channels.DataError, match="etc/evil"):
        data.download(data.objects("s3://bkt/m.json", "ManifestFile"), tmp_path / "in")
    assert not (tmp_path.parent / "etc").exists()


def test_output_links_are_followed_only_inside_the_output_folder(data, tmp_path):
    secret = tmp_path / "host-secret"
    secret.write_text("the host's")
    out = tmp_path / "output"
    (out / "sub").mkdir(parents=True)
    (out / "real.txt").write_text("job's")
    (out / "leak.txt").symlink_to(secret)
    (out / "inner.txt").symlink_to(out / "real.txt")
    (out / "hostdir").symlink_to(tmp_path)  # a link to a folder outside: not walked
    assert data.upload_folder(out, "s3://bkt/out") == 2
    keys = sorted(o["Key"] for o in data.s3.list_objects_v2(Bucket="bkt")["Contents"])
    assert keys == ["out/inner.txt", "out/real.txt"]
    with tarfile.open(fileobj=io.BytesIO(channels.pack(out))) as archive:
        assert "leak.txt" not in archive.getnames() and "hostdir" not in archive.getnames()
    assert channels.changed_since(out, {}) == {out / "real.txt", out / "inner.txt"}


def _model(members: dict[str, int]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        for name, size in members.items():
            info = tarfile.TarInfo(name)
            info.size = size
            archive.addfile(info, io.BytesIO(bytes(size)))
    return raw.getvalue()


def test_an_archive_bomb_is_refused_before_anything_is_extracted(data, tmp_path, monkeypatch):
    monkeypatch.setattr(channels, "MAX_ARCHIVE_BYTES", 10 * 2**20)
    bomb = _model({"model.bin": 64 * 2**20})  # 64 MiB of zeros: ~64 KiB compressed
    assert len(bomb) < 2**20
    data.s3.put_object(Bucket="bkt", Key="bomb.tar.gz", Body=bomb)
    with pytest.raises(channels.DataError, match="expands to 67108864 bytes"):
        data.unpack_model("s3://bkt/bomb.tar.gz", tmp_path / "model")
    assert list((tmp_path / "model").iterdir()) == []


def test_an_archive_of_too_many_files_is_refused(data, tmp_path, monkeypatch):
    monkeypatch.setattr(channels, "MAX_ARCHIVE_MEMBERS", 5)
    data.s3.put_object(Bucket="bkt", Key="many.tar.gz", Body=_model({f"f{n}": 1 for n in range(6)}))
    with pytest.raises(channels.DataError, match="more than 5 files"):
        data.unpack_model("s3://bkt/many.tar.gz", tmp_path / "model")


def test_an_archive_bigger_than_the_free_scratch_is_refused(data, tmp_path, monkeypatch):
    free = type("Usage", (), {"free": channels.SCRATCH_RESERVE_BYTES + 1000})
    monkeypatch.setattr(channels.shutil, "disk_usage", lambda path: free)
    data.s3.put_object(Bucket="bkt", Key="m.tar.gz", Body=_model({"model.bin": 1001}))
    with pytest.raises(channels.DataError, match="more than the 1000 bytes"):
        data.unpack_model("s3://bkt/m.tar.gz", tmp_path / "model")
    data.s3.put_object(Bucket="bkt", Key="ok.tar.gz", Body=_model({"model.bin": 1000}))
    data.unpack_model("s3://bkt/ok.tar.gz", tmp_path / "ok")
    assert (tmp_path / "ok" / "model.bin").stat().st_size == 1000


def test_a_gzip_channel_bomb_is_refused(data, tmp_path, monkeypatch):
    monkeypatch.setattr(channels, "MAX_ARCHIVE_BYTES", 2**20)
    data.s3.put_object(Bucket="bkt", Key="g/big.csv", Body=gzip.compress(bytes(2**20 + 1)))
    data.s3.put_object(Bucket="bkt", Key="h/small.csv", Body=gzip.compress(b"a,b\n"))
    with pytest.raises(channels.DataError, match="'g/big.csv' expands to more than"):
        data.download(data.objects("s3://bkt/g/"), tmp_path / "g", gunzip=True)
    data.download(data.objects("s3://bkt/h/"), tmp_path / "h", gunzip=True)
    assert (tmp_path / "h" / "small.csv").read_bytes() == b"a,b\n"
