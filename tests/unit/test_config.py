import pytest

from harness import config
from tests import ROOT
from tests.projects import write_project

DEV = """
environments:
  dev:
    target: local
    stack_name: s
    artifact_bucket: my-bucket
"""


def test_the_repositorys_own_project_loads():
    loaded = config.load("local")
    assert loaded.project.root == ROOT and loaded.project.name == "mlharness"
    assert loaded.target == "local" and loaded.settings["training"]["quality_metric"] == "roc_auc"
    assert loaded.pipeline_names() == ["training", "inference", "endpoint"]
    assert loaded.schedule("inference").expression == "cron(0 6 * * ? *)"
    assert loaded.records_dir == ROOT / ".mlharness" / "runs" / "local"


def test_an_environment_is_the_shared_settings_with_its_own_on_top(tmp_path):
    project = write_project(
        tmp_path,
        """
        region: eu-west-1
        settings:
          training: {threshold: 0.6, hyperparameters: {C: 0.5}}
        environments:
          prod:
            account: "123456789012"
            settings:
              training: {threshold: 0.9}
        """,
    )
    local, prod = config.load("local", project=project), config.load("prod", project=project)
    assert local.target == "local" and prod.target == "aws" and prod.account == "123456789012"
    assert local.region == prod.region == "eu-west-1"
    assert local.settings["training"]["threshold"] == 0.6 and prod.settings["training"]["threshold"] == 0.9
    assert prod.settings["training"]["hyperparameters"] == {"C": 0.5, "max_iter": 200}  # merged
    # names default from the project's and the environment's
    assert (local.stack_name, local.artifact_bucket) == ("test-local", "test-local-artifacts")
    assert (prod.stack_name, prod.artifact_bucket) == ("test-prod", "test-prod-{account_id}")


def test_overrides_of_nested_keys_merge(tmp_path):
    loaded = config.load(
        "dev",
        ["settings.training.threshold=0.9", "settings.training.hyperparameters.C=0.5"],
        project=write_project(tmp_path, DEV),
    )
    assert loaded.settings["training"]["threshold"] == 0.9
    assert loaded.settings["training"]["hyperparameters"] == {"C": 0.5, "max_iter": 200}
    assert loaded.settings["training"]["test_size"] == 0.2  # the pipeline's own default
    merged = config.load("local", ["settings.training.hyperparameters={max_iter: 50}"])
    assert merged.settings["training"]["hyperparameters"] == {"C": 1.0, "max_iter": 50}


def test_pipelines_not_configured_take_their_declared_defaults(tmp_path):
    loaded = config.load("dev", project=write_project(tmp_path, DEV))
    assert loaded.settings["endpoint"] == {"endpoint_name": "", "instance_count": 1, "poll_seconds": 15}
    assert loaded.schedule("inference").expression is None


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            "settings:\n  training:\n    threshold: 2\n",
            "mlharness.yaml: settings.training.threshold: expected a number between 0 and 1",
        ),
        (
            "settings:\n  training:\n    quality_metric: speed\n",
            "settings.training.quality_metric: expected one of",
        ),
        ("settings:\n  training:\n    seeds: 3\n", "settings.training.seeds: expected one of its settings"),
        ("settings:\n  scoring: {}\n", "settings.scoring: expected a pipeline of the project"),
        (
            "settings:\n  endpoint:\n    poll_seconds: soon\n",
            "settings.endpoint.poll_seconds: expected a int",
        ),
        (
            "schedules:\n  endpoint:\n    expression: rate(1 day)\n",
            "pipeline 'endpoint' declares no schedule",
        ),
        (
            "schedules:\n  inference:\n    expression: daily\n",
            "schedules.inference.expression: expected an EventBridge schedule expression",
        ),
        ("pipeline:\n  threshold: 0.5\n", "pipeline: moved to settings.<pipeline>"),
        ("pipeline_modules: [x]\n", "pipeline_modules: moved to the top-level pipelines list"),
        ("data:\n  rows: many\n", "data: moved to inputs.<name>"),
        ("colour: blue\n", "colour: unknown setting"),
        ("stack_name: s\n", "stack_name: is set per environment"),
        ("instances:\n  training: huge\n", "instances.training: expected a SageMaker training instance type"),
        (
            "inputs:\n  data:\n    generate: {rows: many}\n",
            "inputs.data.generate.rows: expected a int, got 'many'",
        ),
        ("inputs:\n  data:\n    generate: {colour: 3}\n", "inputs.data.generate.colour: expected one of"),
        (
            "inputs:\n  customers: x.csv\n",
            "inputs.customers: expected an input a pipeline of the project takes",
        ),
        ("inputs:\n  data: {path: a, generate: {}}\n", "inputs.data: expected a path, {path: PATH}"),
        (
            "cache:\n  expire_after: a week\n",
            "cache.expire_after: expected a duration such as 90m, 12h or 7d",
        ),
        ("cache:\n  expire_after: 7\n", "cache.expire_after: expected a str"),
        ("cache:\n  max_gb: 0\n", "cache.max_gb: expected a positive number of gigabytes"),
        ("cache:\n  enabled: sometimes\n", "cache.enabled: expected a bool"),
        ("emulator:\n  hook_timeout: 0\n", "emulator.hook_timeout: expected a number of seconds above 0"),
        (
            "emulator:\n  engine: kubernetes\n",
            "emulator.engine: expected moto or localstack, got 'kubernetes'",
        ),
        ("images:\n  trainer: no/such/folder\n", "images.trainer.context: expected a folder of the project"),
        ("images:\n  Trainer: {uri: x}\n", "images.Trainer: expected an image name"),
    ],
)
def test_bad_settings_are_named_in_one_line(tmp_path, extra, message):
    with pytest.raises(config.ConfigError) as raised:
        config.load("dev", project=write_project(tmp_path, DEV + extra))
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_value_of_an_environment_is_blamed_on_its_own_section(tmp_path):
    project = write_project(
        tmp_path, "environments:\n  dev:\n    settings:\n      training: {threshold: 7}\n"
    )
    with pytest.raises(config.ConfigError, match="environments.dev.settings.training.threshold: expected"):
        config.load("dev", project=project)


def test_a_bad_override_names_set_and_its_key():
    with pytest.raises(config.ConfigError, match=r"^--set settings.training.threshold: expected a number"):
        config.load("local", ["settings.training.threshold=7"])
    with pytest.raises(config.ConfigError, match=r"^--set cache.max_gb: expected a positive number"):
        config.load("local", ["cache.max_gb=-1"])
    with pytest.raises(config.ConfigError, match=r"^--set 'cache': expected KEY=VALUE"):
        config.load("local", ["cache"])
    with pytest.raises(config.ConfigError, match=r"^--set cache.enabled.x: cache.enabled is a value, not a"):
        config.load("local", ["cache.enabled.x=1"])
    with pytest.raises(config.ConfigError, match=r"^--input customers: expected an input a pipeline of"):
        config.load("local", inputs={"customers": "x.csv"})
    with pytest.raises(
        config.ConfigError, match=r"^--set pipelines: is set once, at the top of mlharness.yaml"
    ):
        config.load("local", ["pipelines.training.threshold=0.8"])


def test_missing_and_malformed_projects_are_reported(tmp_path):
    with pytest.raises(config.ConfigError, match="project .*nothing: .* is not a folder"):
        config.load("local", project=tmp_path / "nothing")
    project = write_project(tmp_path / "p", DEV)
    with pytest.raises(config.ConfigError, match="no environment 'qa' under environments"):
        config.load("qa", project=project)
    (project / "mlharness.yaml").write_text("project: pp\n  bad: [\n")
    with pytest.raises(config.ConfigError, match="not valid YAML at line 2"):
        config.load("dev", project=project)
    with pytest.raises(config.ConfigError, match="environment name"):
        config.load("../etc", project=ROOT)


@pytest.mark.parametrize(
    "text, message",
    [
        ("pipelines: [pipelines/training.py]\n", "project: expected the project's name"),
        ("project: Bad Name\npipelines: [x]\n", "project: expected the project's name"),
        ("project: pp\n", "pipelines: expected a list of the project's pipelines"),
        (
            "project: pp\npipelines: [flows/none.py]\n",
            "pipelines[0]: expected a .py file of the project, but",
        ),
        ("project: pp\npipelines: ['../x.py']\n", "pipelines[0]: expected a .py file inside the project"),
        ("project: pp\npipelines: [no_such_module]\n", "pipeline module 'no_such_module' cannot be imported"),
        ("project: pp\npipelines: [x]\nenvironments: [dev]\n", "environments: expected a mapping"),
        ("- a list\n", "expected a mapping of settings at the top level"),
    ],
)
def test_a_malformed_project_file_is_one_line_naming_the_file_and_key(tmp_path, text, message):
    (tmp_path / "mlharness.yaml").write_text(text)
    with pytest.raises(config.ConfigError) as raised:
        config.load("local", project=tmp_path)
    assert message in str(raised.value) and "mlharness.yaml" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_the_project_is_found_from_a_folder_inside_it(tmp_path, monkeypatch):
    project = write_project(tmp_path, DEV)
    (project / "deep" / "er").mkdir(parents=True)
    monkeypatch.chdir(project / "deep" / "er")
    assert config.load("dev").project.root == project
    monkeypatch.setenv("MLHARNESS_PROJECT", str(project))
    monkeypatch.chdir("/")
    assert config.load("dev").project.root == project


def test_the_target_a_command_names_must_be_the_environments(tmp_path):
    project = write_project(tmp_path, "environments:\n  dev: {}\n")
    with pytest.raises(config.ConfigError, match="environment 'dev' is target aws: use --target aws dev"):
        config.load("dev", project=project, target="local")
    with pytest.raises(
        config.ConfigError, match="environment 'local' is the local target: use --target local"
    ):
        config.load("local", project=project, target="aws")


def test_environment_variables_override_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MLHARNESS_ARTIFACT_BUCKET", "other-bucket")
    assert config.load("dev", project=write_project(tmp_path, DEV)).artifact_bucket == "other-bucket"


def test_a_project_file_that_is_not_utf8_is_one_line(tmp_path):
    (tmp_path / "mlharness.yaml").write_bytes(b"project: p\nregion: \xff\n")
    with pytest.raises(config.ConfigError, match=r"not UTF-8 \(byte 0xff"):
        config.load("local", project=tmp_path)


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
        ("aws.image_repository=Bad Repo", "a prefix of ECR repository names"),
        ("account=1234", "account: expected a 12-digit AWS account id"),
        ("settings.training.hyperparameters.C=-1", "hyperparameters.C: expected a number greater than 0.0"),
        (
            "settings.training.hyperparameters.solver=lbfgs",
            "hyperparameters.solver: expected one of C, max_iter",
        ),
    ],
)
def test_names_and_expressions_follow_awss_rules(setting, message):
    with pytest.raises(config.ConfigError) as refused:
        config.load("local", [setting])
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_the_step_cache_settings_default_on_and_read_durations(tmp_path):
    loaded = config.load("dev", project=write_project(tmp_path, DEV))
    assert loaded.cache.enabled and loaded.cache.expire_after_seconds is None and loaded.cache.max_gb == 10
    tuned = config.load("local", ["cache.expire_after=36h", "cache.max_gb=2", "cache.enabled=false"])
    assert tuned.cache.expire_after_seconds == 36 * 3600 and tuned.cache.max_gb == 2.0
    assert not tuned.cache.enabled


def test_inputs_are_paths_of_the_project_or_generated(tmp_path):
    project = write_project(tmp_path, DEV + "inputs:\n  data: samples/census.csv\n")
    loaded = config.load("dev", project=project)
    assert loaded.inputs["data"].path == project / "samples" / "census.csv"
    given = config.load("dev", project=project, inputs={"data": "/elsewhere/x.csv"})
    assert str(given.inputs["data"].path) == "/elsewhere/x.csv"
    generated = config.load("local", ["inputs.data.generate.rows=500"])
    assert generated.inputs["data"].generate == {"rows": 500, "seed": 7}
