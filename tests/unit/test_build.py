"""Build: deterministic, from sources alone, no network."""

import json
import socket

import pytest
import yaml

from harness import build, config


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("build tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_two_builds_are_byte_identical_and_touch_no_network(tmp_path, no_network):
    settings = config.load("local")
    first = build.build(settings, tmp_path / "a")
    second = build.build(settings, tmp_path / "b")
    names = sorted(p.name for p in first.iterdir())
    assert names == ["endpoint.asl.json", "inference.asl.json", "template.yaml", "training.asl.json"]
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_definitions_leave_deploy_and_run_time_values_open():
    files = build.render(config.load("local"))
    training = files["training.asl.json"]
    assert "${JobImageUri}" in training and "${SageMakerRoleArn}" in training
    assert "$$.Execution.Input['TrainingJobName']" in training
    assert "mlharness/job" not in training  # no image reference frozen in at build time
    template = yaml.safe_load(files["template.yaml"])
    assert set(template["Parameters"]) >= {"ArtifactBucket", "JobImageUri", "TrainingInstanceType"}
    assert set(template["Outputs"]) >= {
        "TrainingStateMachineArn",
        "InferenceStateMachineArn",
        "EndpointStateMachineArn",
    }
    assert "AWS::S3::Bucket" not in {r["Type"] for r in template["Resources"].values()}


def test_the_quality_gate_compares_the_configured_metric():
    definition = json.loads(
        build.render(config.load("local", ["settings.training.quality_metric=f1"]))["training.asl.json"]
    )
    rule = definition["States"]["QualityGate"]["Choices"][0]
    assert rule["Variable"] == "$.evaluation.metrics.f1"
    assert rule["NumericGreaterThanEqualsPath"] == "$.evaluation.threshold"
    tasks = [s for s in definition["States"].values() if s["Type"] == "Task"]
    assert all(t["Catch"][0]["Next"] == "PipelineFailed" for t in tasks)


SAGEMAKER_JOBS = ("createProcessingJob", "createTrainingJob", "createTransformJob")


def _job_states(definition: dict) -> list[dict]:
    return [
        s for s in definition["States"].values() if any(j in s.get("Resource", "") for j in SAGEMAKER_JOBS)
    ]


def test_a_kms_key_encrypts_every_job_volume_and_output_and_only_then():
    plain = build.render(config.load("dev"))
    encrypted = build.render(config.load("dev", ["aws.kms_key_id=alias/pipelines"]))
    assert not any("Kms" in text for text in plain.values())
    for name in ("training", "inference"):
        states = _job_states(json.loads(encrypted[f"{name}.asl.json"]))
        assert states
        for state in states:
            text = json.dumps(state["Parameters"])
            assert text.count('"VolumeKmsKeyId": "${KmsKeyArn}"') == 1, state
            assert text.count('"KmsKeyId": "${KmsKeyArn}"') == 1, state
    template = yaml.safe_load(encrypted["template.yaml"])
    assert "KmsKeyArn" in template["Parameters"]
    roles = ["SageMakerRole"] + [f"{p}StateMachineRole" for p in ("Training", "Inference", "Endpoint")]
    for role in roles:
        statements = template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        kms = [s for s in statements if any(a.startswith("kms:") for a in s["Action"])]
        assert kms and all(s["Resource"] == {"Ref": "KmsKeyArn"} for s in kms), role


def test_the_schedule_starts_inference_with_a_fixed_input_and_may_only_start_it():
    template = yaml.safe_load(build.render(config.load("local"))["template.yaml"])
    rule = template["Resources"]["InferenceSchedule"]
    assert rule["Condition"] == "HasInferenceSchedule"
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": "InferenceStateMachine"}
    text, variables = target["Input"]["Fn::Sub"]
    assert json.loads(text) == {"CodeUri": "${CodeUri}", "DataUri": "${ScheduleDataUri}"}
    assert variables == {"ScheduleDataUri": {"Ref": "InferenceScheduleDataUri"}}
    role = template["Resources"]["InferenceScheduleRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "events.amazonaws.com"
    }
    (statement,) = role["Policies"][0]["PolicyDocument"]["Statement"]
    assert statement == {
        "Effect": "Allow",
        "Action": "states:StartExecution",
        "Resource": {"Ref": "InferenceStateMachine"},
    }


def test_inference_names_everything_from_the_execution_name():
    definition = json.loads(build.render(config.load("local"))["inference.asl.json"])
    names = definition["States"]["NameRun"]["Parameters"]
    assert all(
        v.startswith("States.Format('") and v.endswith("', $$.Execution.Name)") for v in names.values()
    )
    assert all("inference-{}" in v for v in names.values())  # the prefix the IAM policies allow
    for state in _job_states(definition):
        name_key = next(k for k in state["Parameters"] if k.endswith("JobName.$"))
        assert state["Parameters"][name_key].startswith("$.run.")


TUNING = (
    "settings.training.tuning={strategy: Random, max_jobs: 4, max_parallel: 2, "
    "objective: {metric: 'train:log_loss', type: Minimize}, "
    "ranges: {C: {min: 0.01, max: 10, scaling: Logarithmic}, max_iter: [100, 300]}}"
)


def test_the_tuning_stage_tunes_then_carries_the_best_jobs_model_on():
    settings = config.load("local", [TUNING])
    definition = json.loads(build.render(settings)["training.asl.json"])
    states = definition["States"]
    assert "Train" not in states and states["Preprocess"]["Next"] == "Tune"
    tune = states["Tune"]
    assert tune["Resource"] == "arn:aws:states:::sagemaker:createHyperParameterTuningJob.sync"
    assert tune["Parameters"]["HyperParameterTuningJobName.$"] == "$$.Execution.Input['TuningJobName']"
    tuning_config = tune["Parameters"]["HyperParameterTuningJobConfig"]
    assert tuning_config["ParameterRanges"] == {
        "CategoricalParameterRanges": [{"Name": "max_iter", "Values": ["100", "300"]}],
        "ContinuousParameterRanges": [
            {"Name": "C", "MinValue": "0.01", "MaxValue": "10", "ScalingType": "Logarithmic"}
        ],
    }
    assert tuning_config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2}
    assert tune["Next"] == "BestTrainingJob" and states["BestTrainingJob"]["Next"] == "Evaluate"
    assert states["BestTrainingJob"]["ResultPath"] == "$.train"  # what Evaluate and CreateModel read
    definition_of_jobs = tune["Parameters"]["TrainingJobDefinition"]
    assert definition_of_jobs["AlgorithmSpecification"]["MetricDefinitions"][1]["Name"] == "train:log_loss"
    assert definition_of_jobs["StaticHyperParameters.$"] == "$$.Execution.Input['Hyperparameters']"

    template = yaml.safe_load(build.render(settings)["template.yaml"])
    statements = template["Resources"]["TrainingStateMachineRole"]["Properties"]["Policies"][0][
        "PolicyDocument"
    ]["Statement"]
    tuning_statement = next(s for s in statements if "sagemaker:CreateHyperParameterTuningJob" in s["Action"])
    assert tuning_statement["Resource"]["Fn::Sub"].endswith(":hyper-parameter-tuning-job/training-*")


def test_a_run_with_tuning_leaves_the_tuned_hyperparameters_to_the_tuning_job():
    from mlharness.contract import sample_context
    from pipelines import training

    settings = config.load("local", [TUNING])
    run = sample_context(training.PIPELINE, settings.settings["training"])
    made = training.execution_input(run)
    assert "C" not in made["Hyperparameters"] and "max_iter" not in made["Hyperparameters"]
    assert made["TuningJobName"] == made["RunId"] and len(made["TuningJobName"]) <= 32


@pytest.mark.parametrize(
    "tuning, message",
    [
        (
            "{strategy: Hyperband, objective: {metric: 'train:log_loss', type: Minimize}, ranges: {C: [1]}}",
            "strategy",
        ),
        ("{objective: {metric: roc_auc, type: Minimize}, ranges: {C: [1]}}", "tuning.objective.metric"),
        ("{objective: {metric: 'train:log_loss', type: Least}, ranges: {C: [1]}}", "tuning.objective.type"),
        (
            "{objective: {metric: 'train:log_loss', type: Minimize}, ranges: {gamma: [1]}}",
            "tuning.ranges.gamma",
        ),
        (
            "{objective: {metric: 'train:log_loss', type: Minimize}, ranges: {C: {min: 5, max: 1}}}",
            "min at most max",
        ),
        (
            "{objective: {metric: 'train:log_loss', type: Minimize}, ranges: {C: [1]}, max_jobs: 0}",
            "tuning.max_jobs",
        ),
    ],
)
def test_bad_tuning_settings_are_refused_at_load(tuning, message):
    with pytest.raises(config.ConfigError, match=message):
        config.load("local", [f"settings.training.tuning={tuning}"])
