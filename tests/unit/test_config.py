import pytest

from harness import config


def write(tmp_path, text: str, env: str = "dev"):
    (tmp_path / f"{env}.yaml").write_text(text)
    return tmp_path


BASE = "target: local\nregion: us-east-1\nstack_name: s\nartifact_bucket: my-bucket\n"


def test_the_shipped_local_config_loads():
    loaded = config.load("local")
    assert loaded.target == "local" and loaded.pipeline.quality_metric == "roc_auc"


def test_overrides_reach_nested_settings(tmp_path):
    loaded = config.load(
        "dev", ["pipeline.threshold=0.9", "pipeline.hyperparameters.C=0.5"], write(tmp_path, BASE)
    )
    assert loaded.pipeline.threshold == 0.9
    assert loaded.pipeline.hyperparameters == {"C": 0.5}


@pytest.mark.parametrize(
    "extra, message",
    [
        ("pipeline:\n  threshold: 2\n", "pipeline.threshold: expected a number between 0 and 1"),
        ("pipeline:\n  quality_metric: speed\n", "pipeline.quality_metric: expected one of"),
        ("data:\n  rows: many\n", "data.rows: expected a int, got 'many'"),
        ("colour: blue\n", "unknown setting(s) colour"),
        ("instances:\n  training: huge\n", "instances.training: expected an instance type"),
        ("data:\n  source: data.parquet\n", "data.source: expected 'generated' or the path of a .csv file"),
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
