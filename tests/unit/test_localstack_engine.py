"""`--engine localstack`: how LocalStack is started, and the LocalStack names the plugin relies on.

The contract test runs in LocalStack's own Python (scripts/setup.sh --localstack makes it) and is
skipped with one line where that environment is not installed.
"""

from __future__ import annotations

import configparser
import subprocess
from pathlib import Path

import pytest

from harness.emulator import localstack_engine


def _process(tmp_path: Path) -> localstack_engine.LocalStackProcess:
    return localstack_engine.LocalStackProcess(
        Path("/nonexistent/python"),
        listen=["127.0.0.1:4599", "172.17.0.1:4599"],
        backend_url="http://127.0.0.1:4598",
        root=tmp_path,
        log_file=tmp_path / "localstack.log",
    )


def test_localstack_gets_the_plugin_and_none_of_the_users_aws_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALKEY")
    monkeypatch.setenv("AWS_PROFILE", "prod")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://example.invalid")
    monkeypatch.setenv("PERSISTENCE", "1")
    env = _process(tmp_path)._environment()

    assert env["AWS_ACCESS_KEY_ID"] == "test" and "AWS_PROFILE" not in env and "AWS_ENDPOINT_URL" not in env
    assert "PERSISTENCE" not in env
    assert env["GATEWAY_LISTEN"] == "127.0.0.1:4599,172.17.0.1:4599"
    assert env[localstack_engine.BACKEND_URL_VARIABLE] == "http://127.0.0.1:4598"
    for service in ("SAGEMAKER", "SAGEMAKER_RUNTIME", "ECR"):
        assert env[f"PROVIDER_OVERRIDE_{service}"] == localstack_engine.PROVIDER_NAME
    plugin_path = Path(env["PYTHONPATH"])
    assert (plugin_path / "harness" / "emulator" / "localstack_plugin.py").exists()
    (record,) = plugin_path.glob("*.dist-info")
    points = configparser.ConfigParser(delimiters=("=",))
    points.optionxform = str
    points.read(record / "entry_points.txt")
    assert dict(points["localstack.aws.provider"]) == {
        "ecr:mlharness": "harness.emulator.localstack_plugin:ecr_service",
        "lambda:mlharness": "harness.emulator.localstack_plugin:lambda_service",
        "sagemaker-runtime:mlharness": "harness.emulator.localstack_plugin:sagemaker_runtime_service",
        "sagemaker:mlharness": "harness.emulator.localstack_plugin:sagemaker_service",
    }
    assert set(points["localstack.hooks.on_infra_start"]) == {
        "apply_patches",
        "route_own_endpoints_to_the_backend",
    }


def test_without_localstacks_environment_the_error_says_how_to_install_it(tmp_path):
    with pytest.raises(localstack_engine.LocalStackUnavailable) as raised:
        localstack_engine.require(tmp_path / "bin" / "python")
    message = str(raised.value)
    assert "scripts/setup.sh --localstack" in message and "\n" not in message


def test_the_emulator_refuses_the_engine_in_one_line_when_it_is_not_installed(tmp_path):
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "harness.emulator", "--engine", "localstack", "--port", "0",
         "--state-dir", str(tmp_path / "state")],
        capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", localstack_engine.PYTHON_VARIABLE: str(tmp_path / "none" / "python")},
    )  # fmt: skip
    assert result.returncode != 0
    assert (
        result.stderr.strip().splitlines()[-1].startswith("error: LocalStack's environment is not installed")
    )


LOCALSTACK_CONTRACT = r"""
import inspect
from harness.emulator import asl_engines
from harness.emulator import localstack_plugin  # the providers and hooks load
from harness.emulator.localstack_engine import ENTRY_POINTS
for group in ENTRY_POINTS.values():  # every entry point names a function of the plugin
    for target in group.values():
        module, _, name = target.partition(":")
        assert module == localstack_plugin.__name__ and hasattr(localstack_plugin, name), target
m = asl_engines.engine_modules("localstack")
assert "sagemaker" in m.factory._UNSUPPORTED_SERVICE_NAMES
assert "_eval_jsonata(jsonata_expression)" in inspect.getsource(m.jsonata.eval_jsonata_expression)
assert isinstance(m.aws_sdk._SERVICE_ERROR_NAMES, dict)
assert isinstance(m.state_task_service.StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES, dict)
parameters = list(inspect.signature(m.boto_client.boto_client_for).parameters)
assert parameters == ["service", "region", "state_credentials"], parameters
for name in ("_build_sync_resolver", "_eval_sync", "_eval_service_task", "_from_error"):
    assert hasattr(m.callback.StateTaskServiceCallback, name), name
from localstack.services.events.target import StatesTargetSender
source = inspect.getsource(StatesTargetSender.send_event)
assert 'name=event["id"]' in source and "start_execution" in source, source
from localstack.services.stepfunctions.asl.utils.encoding import to_json_str
from localstack.services.events.resource_providers import aws_events_rule
EventsRuleProvider, extract_rule_name = aws_events_rule.EventsRuleProvider, aws_events_rule.extract_rule_name
assert "raise NotImplementedError" in inspect.getsource(EventsRuleProvider.update)
assert "put_rule" in inspect.getsource(EventsRuleProvider.create) and extract_rule_name("bus|r") == "r"
from harness.emulator import patches
patches.apply_localstack_patches()  # the plugin's hook: every patch of the LocalStack list applies
assert type(m.factory.state_task_service_for("sagemaker")).__name__ == "StateTaskServiceSageMaker"
assert type(m.state_task_factory.state_task_service_for("sagemaker")).__name__ == "StateTaskServiceSageMaker"
assert m.jsonata.eval_jsonata_expression("$sum([1, 2, 3])") == 6
from botocore.session import get_session
invoke = get_session().get_service_model("sagemaker-runtime").operation_model("InvokeEndpoint").input_shape
request = {"EndpointName": "e", "Body": "a,b\n1,2\n", "CustomAttributes": "x"}
task = m.aws_sdk.StateTaskServiceAwsSdk.__new__(m.aws_sdk.StateTaskServiceAwsSdk)
task._to_boto_request(request, invoke)
assert request["Body"] == b"a,b\n1,2\n", request
assert StatesTargetSender.send_event.__module__ == "harness.emulator.patches.localstack"
assert EventsRuleProvider.update.__module__ == "harness.emulator.patches.localstack"
from localstack.aws.forwarder import AwsRequestProxy
from localstack.services.edge import ROUTER
from localstack.services.plugins import Service, aws_provider
assert "parse_response" in inspect.signature(AwsRequestProxy).parameters
assert "dispatch_table_factory" in inspect.signature(Service.for_provider).parameters
print("ok")
"""


def test_the_localstack_names_the_plugin_relies_on_exist(tmp_path):
    """Pinned to LocalStack 4.14: every upstream name the plugin and the shared fixes use."""
    try:
        python = localstack_engine.require()
    except localstack_engine.LocalStackUnavailable as ex:
        pytest.skip(str(ex))
    path = _process(tmp_path)._plugin_path()
    result = subprocess.run(
        [str(python), "-c", LOCALSTACK_CONTRACT],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={"PYTHONPATH": str(path), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
