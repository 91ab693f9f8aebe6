"""A SageMaker Python SDK v3 user's first notebook, unchanged: run by
tests/integration/test_sdk_v3.py with the SDK v3's own Python (.sdk3-venv) and only the
environment `mlharness emulator env` prints. Argument: the training and serving image.

ModelTrainer with source_code (the SDK's own driver runs the entry script), the v3 tuner on
it, then the job's model served through sagemaker.core.resources and through ModelBuilder,
each invoked.
"""

import json
import pathlib
import sys
import tempfile
import uuid

from sagemaker.core.helper.session_helper import Session, get_execution_role
from sagemaker.core.parameter import IntegerParameter
from sagemaker.core.resources import Endpoint, EndpointConfig, Model
from sagemaker.core.shapes import ContainerDefinition, ProductionVariant
from sagemaker.serve import ModelBuilder
from sagemaker.train import ModelTrainer
from sagemaker.train.configs import Compute, InputData, SourceCode
from sagemaker.train.tuner import HyperparameterTuner

image = sys.argv[1]


def _jobs(tuning_job) -> set[str]:
    """The names of the tuning job's training jobs, as SageMaker lists them."""
    listed = session.sagemaker_client.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=tuning_job.hyper_parameter_tuning_job_name
    )
    return {summary["TrainingJobName"] for summary in listed["TrainingJobSummaries"]}


def say(key: str, value) -> None:
    """One line the test reads (the SDK's progress panels end without a newline)."""
    print(f"\n{key} {value}", flush=True)


session = Session()
role = get_execution_role()  # asks STS at AWS's own address: the prepared shell answers it
bucket = session.default_bucket()
say("role", role)
say("account", session.account_id())

code = pathlib.Path(tempfile.mkdtemp())
(code / "train.py").write_text(
    "import json, os, sys\n"
    "rows = open(os.path.join(os.environ['SM_CHANNEL_TRAIN'], 'rows.csv')).read().splitlines()\n"
    "model = {'lines': len(rows), 'args': sys.argv[1:]}\n"
    "epochs = json.load(open('/opt/ml/input/config/hyperparameters.json')).get('epochs', '1')\n"
    "print('loss=%.3f' % (1 / int(str(epochs).strip(chr(34)))))\n"
    "json.dump(model, open(os.path.join(os.environ['SM_MODEL_DIR'], 'model.json'), 'w'))\n"
)
session.upload_string_as_file_body("1\n2\n3\n", bucket, "v3/train/rows.csv")
trainer = ModelTrainer(
    training_image=image,
    source_code=SourceCode(source_dir=str(code), entry_script="train.py"),
    compute=Compute(instance_type="ml.m5.large", instance_count=1),
    role=role,
    base_job_name="v3-first",
    hyperparameters={"epochs": 2},
)
trainer.train(
    input_data_config=[InputData(channel_name="train", data_source=f"s3://{bucket}/v3/train/")], logs=False
)
job = trainer._latest_training_job
say("training", f"{job.training_job_status} {json.dumps(job.hyper_parameters, sort_keys=True)}")
model_data = job.model_artifacts.s3_model_artifacts

tuner = HyperparameterTuner(
    model_trainer=trainer,
    objective_metric_name="loss",
    objective_type="Minimize",
    hyperparameter_ranges={"epochs": IntegerParameter(1, 4)},
    metric_definitions=[{"Name": "loss", "Regex": "loss=([0-9.]+)"}],
    max_jobs=2,
    max_parallel_jobs=2,
)
tuner.tune(inputs=[InputData(channel_name="train", data_source=f"s3://{bucket}/v3/train/")], wait=True)
tuned = tuner.describe()
say("tuning", f"{tuned.hyper_parameter_tuning_job_status} {tuner.best_training_job() in _jobs(tuned)}")

suffix = uuid.uuid4().hex[:6]
model = Model.create(
    model_name=f"v3-model-{suffix}",
    primary_container=ContainerDefinition(image=image, model_data_url=model_data),
    execution_role_arn=role,
)
config = EndpointConfig.create(
    endpoint_config_name=f"v3-config-{suffix}",
    production_variants=[
        ProductionVariant(
            variant_name="AllTraffic",
            model_name=model.model_name,
            initial_instance_count=1,
            instance_type="ml.m5.large",
        )
    ],
)
endpoint = Endpoint.create(
    endpoint_name=f"v3-endpoint-{suffix}", endpoint_config_name=config.endpoint_config_name
)
endpoint.wait_for_status("InService")
say("resources-answer", endpoint.invoke(body="7\n", content_type="text/csv").body.read().decode().strip())
endpoint.delete()

builder = ModelBuilder(
    image_uri=image, s3_model_data_url=model_data, role_arn=role, instance_type="ml.m5.large"
)
builder.build(model_name=f"v3-built-{suffix}")
deployed = builder.deploy(
    endpoint_name=f"v3-builder-{suffix}", initial_instance_count=1, instance_type="ml.m5.large"
)
say("builder-answer", deployed.invoke(body="5\n", content_type="text/csv").body.read().decode().strip())
deployed.delete()
