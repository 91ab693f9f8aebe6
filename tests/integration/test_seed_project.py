"""The seed project runs unchanged on the local AWS: awslabs/mlmax's modules/pipeline, from a
temporary copy of ../shared/third_party/mlmax, with only the environment set.

What differs from a run on AWS, each named here:
- the environment: `python -m harness emulator env` (endpoint, credentials, region, the
  SageMaker SDK's default bucket and role);
- AWS's public sample data (`s3://sagemaker-sample-data-us-east-1/processing/census/`) is
  put in the local AWS, census-like rows with the columns mlmax reads;
- AWS's prebuilt scikit-learn 0.20 image cannot be pulled here: the project's job image
  (scikit-learn, pandas, the SageMaker training toolkit) is tagged with the URI the SDK
  computes for it;
- that image's scikit-learn is newer than 0.20, so ADAPTATIONS changes the few calls whose
  API changed since, in the copy only. Nothing else of mlmax's code or templates changes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import docker
import pytest

from tests import ROOT
from tests.integration.helpers import census_csv
from tests.integration.test_user_env import exported

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SEED = ROOT.parent / "shared" / "third_party" / "mlmax"
SAMPLE_DATA = ("sagemaker-sample-data-us-east-1", "processing/census/census-income.csv")
# (file, what mlmax wrote for scikit-learn 0.20, what scikit-learn 1.x takes, why)
ADAPTATIONS = [
    (
        "src/mlmax/preprocessing.py",
        "OneHotEncoder(sparse=False)",
        "OneHotEncoder(sparse_output=False)",
        "scikit-learn 1.2 renamed OneHotEncoder's `sparse` to `sparse_output` (1.4 removed it)",
    ),
    (
        "src/mlmax/preprocessing.py",
        """        (
            ["age", "num persons worked for employer"],
            KBinsDiscretizer(encode="onehot-dense", n_bins=10),
        ),
        (
            ["capital gains", "capital losses", "dividends from stocks"],
            StandardScaler(),
        ),
        (
            ["education", "major industry code", "class of worker"],
            OneHotEncoder(sparse_output=False),
        ),""",
        """        (
            KBinsDiscretizer(encode="onehot-dense", n_bins=10),
            ["age", "num persons worked for employer"],
        ),
        (
            StandardScaler(),
            ["capital gains", "capital losses", "dividends from stocks"],
        ),
        (
            OneHotEncoder(sparse_output=False),
            ["education", "major industry code", "class of worker"],
        ),""",
        "make_column_transformer took (columns, transformer) in 0.20; since 0.22 (transformer, columns)",
    ),
]


@pytest.fixture(scope="module")
def sklearn_stand_in(job_image, docker_client):
    """The project's job image under the URI the SDK computes for scikit-learn 0.20 (no pull here)."""
    from sagemaker import image_uris

    uri = image_uris.retrieve("sklearn", "us-east-1", "0.20.0", instance_type="ml.m5.xlarge")
    repository, tag = uri.rsplit(":", 1)
    docker_client.images.get(job_image).tag(repository, tag=tag)
    yield uri
    try:
        docker_client.images.remove(uri, noprune=True)
    except docker.errors.ImageNotFound:  # another session on this engine removed the tag first
        pass


@pytest.fixture
def seed(tmp_path) -> Path:
    if not SEED.is_dir():
        pytest.skip(f"the seed project is not beside the clone ({SEED})")
    copy = tmp_path / "mlmax"
    shutil.copytree(SEED, copy)
    for file, old, new, why in ADAPTATIONS:
        path = copy / file
        text = path.read_text()
        assert old in text, f"mlmax changed: {file} no longer has what the adaptation replaces ({why})"
        path.write_text(text.replace(old, new))
    return copy


def test_mlmax_creates_deploys_trains_and_infers_on_the_local_aws(
    local_aws, sklearn_stand_in, seed, tmp_path
):
    port = local_aws.endpoint_url.rsplit(":", 1)[1]
    home = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    printed = subprocess.run(
        [sys.executable, "-m", "harness", "emulator", "env", "--port", port],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env=home, check=True,
    )  # fmt: skip
    user = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_"))}
    env = {
        **user,
        **exported(printed.stdout),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{user['PATH']}",  # python and aws of this venv
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
    }
    s3 = boto3.client("s3", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")
    bucket, key = SAMPLE_DATA
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=census_csv(3000))
    package_bucket = env["SAGEMAKER_DEFAULT_BUCKET"]
    pipeline = seed / "modules" / "pipeline"

    def run(*command: str) -> str:
        done = subprocess.run(command, cwd=pipeline, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    run(sys.executable, "training_pipeline_create.py")
    run(sys.executable, "inference_pipeline_create.py")
    deployed = run("bash", "deploy.sh", "dev", package_bucket)
    assert "Successfully created/updated stack - MlMaxPipelineDemo-dev" in deployed
    trained = run(sys.executable, "training_pipeline_run.py")
    inferred = run(sys.executable, "inference_pipeline_run.py")

    cfn = boto3.client("cloudformation", endpoint_url=local_aws.endpoint_url, region_name="us-east-1")
    root = cfn.describe_stacks(StackName="MlMaxPipelineDemo-dev")["Stacks"][0]
    nested = [s for s in cfn.describe_stacks()["Stacks"] if s.get("RootId") == root["StackId"]]
    assert root["StackStatus"] == "CREATE_COMPLETE"
    assert sorted(s["StackName"].split("-")[2] for s in nested) == [
        "IAMRoles",
        "StepFunctionInferencePipeline",
        "StepFunctionTrainingPipeline",
    ]  # fmt: skip  (the scheduler is off in dev)
    assert '"roc_auc":' in trained  # the evaluation report the run script prints
    inference_job = next(line for line in inferred.splitlines() if line.startswith("Inference Job Name is "))
    predictions = s3.list_objects_v2(
        Bucket=package_bucket, Prefix=f"{inference_job.rsplit(' ', 1)[1]}/output/"
    )
    assert [o["Key"].rsplit("/", 1)[1] for o in predictions.get("Contents", [])] == ["predictions.csv"]
