import gzip
import io
import tarfile

from harness import package
from tests import ROOT

EXAMPLE_CODE = ("jobs", "preprocessing")  # what this repository's pipelines declare as their code


def test_the_code_bundle_is_deterministic_and_holds_the_job_code():
    first, second = package.code_bundle(ROOT, EXAMPLE_CODE), package.code_bundle(ROOT, EXAMPLE_CODE)
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


def test_a_pipelines_own_code_package_ships_in_the_bundle_as_it_imports(tmp_path):
    (tmp_path / "team" / "jobs").mkdir(parents=True)
    (tmp_path / "team" / "__init__.py").write_text("")
    (tmp_path / "team" / "jobs" / "__init__.py").write_text("")
    (tmp_path / "team" / "jobs" / "profile.py").write_text("print('profile')\n")
    (tmp_path / "team_step.py").write_text("print('step')\n")
    (tmp_path / "loose").mkdir()  # a namespace package: no __init__.py
    (tmp_path / "loose" / "job.py").write_text("print('job')\n")

    bundle = package.code_bundle(tmp_path, ["team.jobs", "team_step", "loose"])

    with tarfile.open(fileobj=io.BytesIO(bundle)) as tar:
        names = tar.getnames()
    assert {"team/jobs/__init__.py", "team/jobs/profile.py", "team_step.py", "loose/job.py"} <= set(names)
    assert names == sorted(names)
    assert bundle == package.code_bundle(
        tmp_path, ["loose", "team_step", "team.jobs"]
    )  # order does not matter


def test_a_code_package_that_cannot_be_found_is_one_line():
    import pytest

    with pytest.raises(package.BundleError, match="code package 'no_such_team' cannot be found"):
        package.code_bundle(ROOT, ["no_such_team"])


def test_a_template_too_large_to_send_inline_is_read_from_the_bucket_on_the_s3_endpoint_in_use():
    from harness import deploy

    assert deploy.fits_inline("x" * 51_200) and not deploy.fits_inline("x" * 51_201)
    uri = "s3://artifacts/templates/abc.yaml"
    assert (
        deploy.template_url(uri, "http://127.0.0.1:4566")
        == "http://localhost:4566/artifacts/templates/abc.yaml"
    )
    assert (
        deploy.template_url(uri, "https://s3.eu-west-1.amazonaws.com")
        == "https://s3.eu-west-1.amazonaws.com/artifacts/templates/abc.yaml"
    )
