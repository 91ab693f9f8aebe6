import pytest

from harness import config


def write(tmp_path, text: str, env: str = "dev"):
    (tmp_path / f"{env}.yaml").write_text(text)
    return tmp_path


BASE = "target: local\nregion: us-east-1\nstack_name: s\nartifact_bucket: my-bucket\n"


def test_the_shipped_local_config_loads():
    loaded = config.load("local")
    assert loaded.target == "local" and loaded.settings["training"]["quality_metric"] == "roc_auc"
    assert loaded.pipeline_names() == ["training", "inference", "endpoint"]
    assert loaded.schedule("inference").expression == "cron(0 6 * * ? *)"


def test_overrides_reach_nested_settings(tmp_path):
    loaded = config.load(
        "dev",
        ["pipelines.training.threshold=0.9", "pipelines.training.hyperparameters.C=0.5"],
        write(tmp_path, BASE),
    )
    assert loaded.settings["training"]["threshold"] == 0.9
    assert loaded.settings["training"]["hyperparameters"] == {"C": 0.5}
    assert loaded.settings["training"]["test_size"] == 0.2  # the pipeline's own default


def test_pipelines_not_configured_take_their_declared_defaults(tmp_path):
    loaded = config.load("dev", config_dir=write(tmp_path, BASE))
    assert loaded.settings["endpoint"] == {"endpoint_name": "", "instance_count": 1, "poll_seconds": 15}
    assert loaded.schedule("inference").expression is None


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            "pipelines:\n  training:\n    threshold: 2\n",
            "pipelines.training.threshold: expected a number between 0 and 1",
        ),
        (
            "pipelines:\n  training:\n    quality_metric: speed\n",
            "pipelines.training.quality_metric: expected one of",
        ),
        ("pipelines:\n  training:\n    seeds: 3\n", "pipelines.training.seeds: expected one of its settings"),
        ("pipelines:\n  scoring: {}\n", "pipelines.scoring: expected a registered pipeline"),
        (
            "pipelines:\n  endpoint:\n    poll_seconds: soon\n",
            "pipelines.endpoint.poll_seconds: expected a int",
        ),
        (
            "schedules:\n  endpoint:\n    expression: rate(1 day)\n",
            "pipeline 'endpoint' declares no schedule",
        ),
        (
            "schedules:\n  inference:\n    expression: daily\n",
            "schedules.inference.expression: expected an EventBridge schedule expression",
        ),
        ("pipeline:\n  threshold: 0.5\n", "pipeline: moved to pipelines.<pipeline>"),
        ("pipeline_modules: [no_such_module]\n", "pipeline module 'no_such_module' cannot be imported"),
        ("data:\n  rows: many\n", "data.rows: expected a int, got 'many'"),
        ("colour: blue\n", "unknown setting(s) colour"),
        ("instances:\n  training: huge\n", "instances.training: expected a SageMaker training instance type"),
        ("data:\n  source: data.parquet\n", "data.source: expected 'generated' or the path of a .csv file"),
        (
            "cache:\n  expire_after: a week\n",
            "cache.expire_after: expected a duration such as 90m, 12h or 7d",
        ),
        ("cache:\n  expire_after: 7\n", "cache.expire_after: expected a str"),
        ("cache:\n  max_gb: 0\n", "cache.max_gb: expected a positive number of gigabytes"),
        ("cache:\n  enabled: sometimes\n", "cache.enabled: expected a bool"),
        (
            "emulator:\n  engine: kubernetes\n",
            "emulator.engine: expected moto or localstack, got 'kubernetes'",
        ),
    ],
)
def test_bad_settings_are_named_in_one_line(tmp_path, extra, message):
    with pytest.raises(config.ConfigError) as raised:
        config.load("dev", config_dir=write(tmp_path, BASE + extra))
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_missing_and_malformed_files_are_reported(tmp_path):
    with pytest.raises(config.ConfigError, match="no configuration for environment 'qa'"):
        config.load("qa", config_dir=tmp_path)
    with pytest.raises(config.ConfigError, match="not valid YAML at line 2"):
        config.load("dev", config_dir=write(tmp_path, "target: local\n  bad: [\n"))
    with pytest.raises(config.ConfigError, match="environment name"):
        config.load("../etc", config_dir=tmp_path)


def test_environment_variables_override_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MLHARNESS_ARTIFACT_BUCKET", "other-bucket")
    assert config.load("dev", config_dir=write(tmp_path, BASE)).artifact_bucket == "other-bucket"


def test_a_configuration_that_is_not_a_readable_utf8_file_is_one_line(tmp_path):
    (tmp_path / "dev.yaml").mkdir()
    with pytest.raises(config.ConfigError, match="dev.yaml is not a file"):
        config.load("dev", config_dir=tmp_path)
    (tmp_path / "qa.yaml").write_bytes(b"target: local\nregion: \xff\n")
    with pytest.raises(config.ConfigError, match=r"not UTF-8 \(byte 0xff"):
        config.load("qa", config_dir=tmp_path)


@pytest.mark.parametrize(
    "setting, message",
    [
        ("artifact_bucket=my..bucket", "no two periods together"),
        ("artifact_bucket=192.168.10.20", "not an IP address"),
        ("stack_name=bad_stack!name", "a letter first, then only letters, digits and '-'"),
        ("stack_name=1-starts-with-digit", "a letter first"),
        ("schedules.inference.expression=cron(every day at six)", "cron with six fields"),
        ("schedules.inference.expression=rate(1 days)", "the unit is singular for 1"),
        ("instances.training=ml.m5.huge", "a SageMaker training instance type (for example ml.m5."),
        ("aws.image_repository=Bad Repo", "an ECR repository name"),
        ("pipelines.training.hyperparameters.C=-1", "hyperparameters.C: expected a number greater than 0.0"),
        (
            "pipelines.training.hyperparameters.solver=lbfgs",
            "hyperparameters.solver: expected one of C, max_iter",
        ),
    ],
)
def test_names_and_expressions_follow_awss_rules(setting, message):
    with pytest.raises(config.ConfigError) as refused:
        config.load("local", [setting])
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_the_step_cache_settings_default_on_and_read_durations(tmp_path):
    loaded = config.load("dev", config_dir=write(tmp_path, BASE))
    assert loaded.cache.enabled and loaded.cache.expire_after_seconds is None and loaded.cache.max_gb == 10
    tuned = config.load("local", ["cache.expire_after=36h", "cache.max_gb=2", "cache.enabled=false"])
    assert tuned.cache.expire_after_seconds == 36 * 3600 and tuned.cache.max_gb == 2.0
    assert not tuned.cache.enabled
