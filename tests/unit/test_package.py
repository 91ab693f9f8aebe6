import gzip
import io
import tarfile

from harness import package


def test_the_code_bundle_is_deterministic_and_holds_the_job_code():
    first, second = package.code_bundle(), package.code_bundle()
    assert first == second
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        names = tar.getnames()
        assert {"jobs/train.py", "jobs/serve.py", "preprocessing/features.py"} <= set(names)
        assert all(m.mtime == 0 and m.uid == 0 for m in tar.getmembers())
    assert gzip.decompress(first)  # a valid gzip stream with a fixed header


def test_uploads_are_content_addressed_and_skipped_when_present(tmp_path):
    from moto import mock_aws

    with mock_aws():
        import boto3

        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="bundles")
        first = package.upload_code(s3, "bundles", b"bundle")
        again = package.upload_code(s3, "bundles", b"bundle")
        assert first.uploaded and not again.uploaded
        assert first.uri == f"s3://bundles/code/{first.sha256}.tar.gz"
        data = tmp_path / "rows.csv"
        data.write_text("a\n1\n")
        uploaded = package.upload_data(s3, "bundles", data)
        assert uploaded.uri == f"s3://bundles/data/{uploaded.sha256}/"
