"""Patches to moto's Step Functions (its ASL engine is LocalStack's, vendored)."""

from __future__ import annotations

import contextvars
import copy
import datetime
import json
import re
import time
import uuid

STOP_EXECUTION_WAIT_S = 10
# The test case an execution being started runs (set around StartExecution, read as its worker is made).
_MOCK_TEST_CASE: contextvars.ContextVar = contextvars.ContextVar("mock_test_case", default=None)


def aws_error(code: str, message: str, status: int = 400) -> Exception:
    """An error the client sees as AWS's `code` (moto's AWSError, built here so that a moved
    name fails the patch that raises it, not every patch at import)."""
    from moto.core.exceptions import AWSError

    return AWSError(message, exception_type=code, status=status)


def enable_state_machine_execution() -> None:
    """moto stores state machines but runs nothing unless this switch is on."""
    from moto.core.config import default_user_config

    default_user_config["stepfunctions"]["execute_state_machine"] = True


def route_cloudformation_state_machines_to_executing_backend() -> None:
    """CloudFormation creates state machines in moto's non-executing backend.

    With execution on, the API reads the parser backend, so a stack's state
    machine "does not exist". Point the CloudFormation models' reference at the
    parser backend so both paths share one store. (moto.stepfunctions's own
    attribute stays: the server routes requests by that backend's module.)
    """
    import moto.stepfunctions.models
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    moto.stepfunctions.models.stepfunctions_backends = stepfunctions_parser_backends


def evaluate_jsonata_in_python() -> None:
    """moto's JSONata evaluator is a stub (upstream needs a JVM); use jsonata-python."""
    from harness.emulator.patches import interpreter

    interpreter.evaluate_jsonata_in_python("moto")


def keep_task_timeouts_on_the_stack_after_a_stop() -> None:
    """A `.sync` Task stopped mid-evaluation took its input for its timeout (see interpreter)."""
    from harness.emulator.patches import interpreter

    interpreter.keep_task_timeouts_on_the_stack_after_a_stop("moto")


def evaluate_role_arn_path_keys() -> None:
    """`{"RoleArn.$": "$.role"}` stayed a literal (see interpreter)."""
    from harness.emulator.patches import interpreter

    interpreter.evaluate_role_arn_path_keys("moto")


# a filter, wildcard, slice, union or recursive descent: the path may match several values
_INDEFINITE_PATH = re.compile(r"\[\?|\*|\.\.|\[[^\]]*[:,][^\]]*\]")


def read_definite_paths_after_an_index_as_values() -> None:
    """moto answers any path whose match sits under an array index with a list (its fix for
    filter paths, moto #7825), so `$[0].Payload` after a Parallel state gave `[payload]`;
    AWS (and LocalStack's own engine) gives a definite path's one value."""
    import sys

    # every module that calls it, imported first (the preprocessor imports every component)
    import moto.stepfunctions.parser.asl.parse.preprocessor  # noqa: F401
    from jsonpath_ng.ext import parse
    from moto.stepfunctions.parser.asl.utils import json_path

    upstream = json_path.extract_json
    if getattr(upstream, "__wrapped__", None) is not None:
        return  # already applied

    def extract_json(path: str, data):
        if _INDEFINITE_PATH.search(path) is None:
            matches = parse(path).find(data)
            if len(matches) == 1:
                return matches[0].value
        return upstream(path, data)

    extract_json.__wrapped__ = upstream
    # the engine's modules imported the function by name: replace it in each
    for name, module in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions.parser") and getattr(module, "extract_json", None) is upstream:
            module.extract_json = extract_json


def _any_error_name(custom_error_name: type) -> type:
    """CustomErrorName without its refusal of the `States.` prefix."""
    from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName

    class AnyErrorName(custom_error_name):
        def __init__(self, error_name: str | None):
            ErrorName.__init__(self, error_name=error_name)

    return AnyErrorName


def allow_states_errors_in_fail_states() -> None:
    """A Fail state may re-raise a caught `States.*` error (ErrorPath: $.error.Error);
    moto's engine wraps the name in CustomErrorName, which refuses that prefix."""
    from moto.stepfunctions.parser.asl.component.state.fail import state_fail

    state_fail.CustomErrorName = _any_error_name(state_fail.CustomErrorName)


def allow_states_errors_in_mocked_throws() -> None:
    """A mocked response may throw `States.TaskFailed` (what a failed .sync job raises), as
    Step Functions Local allows; the engine wrapped it in CustomErrorName, which refused it."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import mock_eval_utils

    mock_eval_utils.CustomErrorName = _any_error_name(mock_eval_utils.CustomErrorName)


def make_stop_execution_synchronous() -> None:
    """On AWS, once StopExecution returns the execution is ABORTED, with the error and
    cause given. moto drops both and stops in the background, so an immediate
    DescribeExecution still says RUNNING."""
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.responses import StepFunctionResponse

    def stop_execution(backend, execution_arn: str, error: str | None = None, cause: str | None = None):
        backend._validate_execution_arn(execution_arn)
        state_machine = backend._get_state_machine_for_execution(execution_arn)
        execution = next((x for x in state_machine.executions if x.execution_arn == execution_arn), None)
        if execution is None:
            return state_machine.stop_execution(execution_arn)  # raises ExecutionDoesNotExist
        execution.stop(stop_date=utcnow(), error=error, cause=cause)
        deadline = time.monotonic() + STOP_EXECUTION_WAIT_S
        while execution.status == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.01)
        return execution

    def stop_execution_response(response):
        execution = response.stepfunction_backend.stop_execution(
            response._get_param("executionArn"),
            error=response._get_param("error"),
            cause=response._get_param("cause"),
        )
        return ActionResult({"stopDate": execution.stop_date})

    StepFunctionsParserBackend.stop_execution = stop_execution
    StepFunctionResponse.stop_execution = stop_execution_response


# -- conformance with AWS (each fix is measured by tests/conformance) --------


def name_unnamed_executions() -> None:
    """AWS names an execution started without a name with a UUID; moto used "None",
    so a second unnamed execution of a machine collided with the first."""
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend.start_execution

    def start_execution(backend, state_machine_arn, name=None, execution_input=None, trace_header=None):
        return original(backend, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header)

    StepFunctionsParserBackend.start_execution = start_execution


def describe_executions_as_aws() -> None:
    """DescribeExecution's output is always JSON text ("\\"abc\\"", "null"); moto sent
    strings raw, dropped null, and crashed (HTTP 500) on timestamps in the output."""
    from moto.core.responses import ActionResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def describe_execution(response) -> ActionResult:
        arn = response._get_param("executionArn")
        return ActionResult(execution_description(response.stepfunction_backend.describe_execution(arn)))

    StepFunctionResponse.describe_execution = describe_execution


def describe_state_machines_for_executions_as_aws() -> None:
    """DescribeStateMachineForExecution answered DescribeStateMachine's members (creationDate,
    status, type) and not updateDate, which AWS's model requires."""
    from moto.core.responses import ActionResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def describe_state_machine_for_execution(response) -> ActionResult:
        backend = response.stepfunction_backend
        machine = backend.describe_state_machine_for_execution(response._get_param("executionArn"))
        answer = {
            "stateMachineArn": machine.arn,
            "name": machine.name,
            "definition": machine.definition,
            "roleArn": machine.roleArn,
            "updateDate": machine.update_date,
            "loggingConfiguration": machine.loggingConfiguration,
            "tracingConfiguration": machine.tracingConfiguration,
            "encryptionConfiguration": machine.encryptionConfiguration,
        }
        return ActionResult({key: value for key, value in answer.items() if value is not None})

    describe_state_machine_for_execution.__wrapped__ = (
        StepFunctionResponse.describe_state_machine_for_execution
    )
    StepFunctionResponse.describe_state_machine_for_execution = describe_state_machine_for_execution


def _execution_summary(execution, state_machine_arn: str) -> dict:
    """What both DescribeExecution and ListExecutions say of an execution."""
    summary = {
        "executionArn": execution.execution_arn,
        "name": execution.name,
        "startDate": execution.start_date,
        "stateMachineArn": state_machine_arn,
        "status": execution.status,
    }
    if execution.status != "RUNNING":
        summary["stopDate"] = execution.stop_date
    return summary


def execution_description(execution) -> dict:
    """DescribeExecution's answer for one of the engine's executions, as AWS gives it."""
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    answer = _execution_summary(execution, execution.state_machine_arn) | {
        "input": execution.execution_input,
        "inputDetails": {"included": True},
    }
    if execution.status == "SUCCEEDED":
        answer["output"] = to_json_str(execution.output, separators=(",", ":"))
        answer["outputDetails"] = execution.output_details
    if execution.error is not None:
        answer["error"] = execution.error
    if execution.cause is not None:
        answer["cause"] = execution.cause
    answer.update(_redrive_fields(execution, with_status=True))
    return answer


def _redrive_fields(execution, with_status: bool) -> dict:
    """redriveCount and redriveDate of a STANDARD execution (and DescribeExecution's
    redriveStatus and redriveStatusReason)."""
    from harness.emulator import redrive

    if getattr(execution, "sm_type", "STANDARD") != "STANDARD":
        return {}
    fields = {"redriveCount": getattr(execution, "redrive_count", 0)}
    if getattr(execution, "redrive_date", None) is not None:
        fields["redriveDate"] = execution.redrive_date
    if with_status:
        status, reason = redrive.redrive_status(execution)
        fields["redriveStatus"] = status
        if reason:
            fields["redriveStatusReason"] = reason
    return fields


def redrive_only_what_did_not_succeed() -> None:
    """A redriven Map or Parallel state runs only its iterations and branches that did not
    succeed in an earlier attempt; the others give their earlier output (AWS's redrive; moto's
    engine would run them all). The outputs are kept by harness.emulator.redrive.Finished.
    A Distributed Map's own workers are left as they are: they run every item again."""
    import threading

    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.iteration_worker import (
        IterationWorker,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branch_worker import (
        BranchWorker,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branches_decl import (
        BranchesDecl,
    )
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramEnded

    from harness.emulator import redrive

    eval_job = IterationWorker._eval_job

    def eval_job_once(self, env, job) -> None:
        finished, attempt = redrive.finished_of(env)
        where = redrive.place("Map", self._work_name, job.job_index, job.job_input)
        done, output = finished.earlier(where, attempt)
        if done:  # no iteration events: AWS reschedules only the ones that did not succeed
            job.job_output = copy.deepcopy(output)
            return
        eval_job(self, env, job)
        if not isinstance(job.job_output, Exception):
            finished.record(where, attempt, copy.deepcopy(job.job_output))

    IterationWorker._eval_job = eval_job_once

    # A branch worker is made by BranchesDecl in the Parallel state's thread, knowing only its
    # program: which branch it is, and of which state, is taken from the declaration making it.
    making = threading.local()
    eval_branches, init_worker, run_worker = (
        BranchesDecl._eval_body,
        BranchWorker.__init__,
        BranchWorker._thread_routine,
    )

    def eval_branches_noting_which(self, env) -> None:
        making.programs = self.programs
        making.state = env.states.context_object.context_object_data["State"]["Name"]
        try:
            eval_branches(self, env)
        finally:
            making.programs = None

    def init_worker_placed(self, branch_worker_comm, program, env) -> None:
        init_worker(self, branch_worker_comm, program, env)
        programs = getattr(making, "programs", None) or []
        index = next((i for i, known in enumerate(programs) if known is program), None)
        self.mlharness_place = (
            None if index is None else redrive.place("Parallel", making.state, index, env.states.get_input())
        )

    def run_worker_once(self) -> None:
        where = getattr(self, "mlharness_place", None)
        if where is None:
            run_worker(self)
            return
        finished, attempt = redrive.finished_of(self.env)
        done, output = finished.earlier(where, attempt)
        if done:
            self.env.states.reset(input_value=copy.deepcopy(output))
            self._branch_worker_comm.on_terminated(env=self.env)
            return
        run_worker(self)
        if isinstance(self.env.program_state(), ProgramEnded):
            finished.record(where, attempt, copy.deepcopy(self.env.states.get_input()))

    BranchesDecl._eval_body = eval_branches_noting_which
    BranchWorker.__init__ = init_worker_placed
    BranchWorker._thread_routine = run_worker_once


def add_redrive_execution() -> None:
    """moto has no RedriveExecution (nor the redrive fields of DescribeExecution and
    ListExecutions, nor ListExecutions' redriveFilter); harness.emulator.redrive continues a
    failed, aborted or timed-out execution as AWS does."""
    from moto.core.responses import ActionResult
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.responses import StepFunctionResponse
    from moto.stepfunctions.utils import PAGINATION_MODEL
    from moto.utilities.paginator import paginate

    from harness.emulator import redrive

    def redrive_execution(backend, execution_arn: str) -> datetime.datetime:
        execution = backend.describe_execution(execution_arn)  # raises ExecutionDoesNotExist
        try:
            return redrive.redrive(execution)
        except redrive.NotRedrivable as ex:
            raise aws_error("ExecutionNotRedrivable", str(ex)) from None

    def redrive_execution_response(response) -> ActionResult:
        redriven = response.stepfunction_backend.redrive_execution(response._get_param("executionArn"))
        return ActionResult({"redriveDate": redriven})

    @paginate(pagination_model=PAGINATION_MODEL)
    def list_executions(backend, state_machine_arn, status_filter=None, redrive_filter=None):
        executions = backend.describe_state_machine(state_machine_arn).executions
        if status_filter:
            executions = [e for e in executions if e.status == status_filter]
        if redrive_filter:
            redriven = redrive_filter == "REDRIVEN"
            executions = [e for e in executions if (getattr(e, "redrive_count", 0) > 0) == redriven]
        return sorted(executions, key=lambda e: e.start_date, reverse=True)

    def list_executions_response(response) -> ActionResult:
        arn = response._get_param("stateMachineArn")
        state_machine = response.stepfunction_backend.describe_state_machine(arn)
        results, next_token = response.stepfunction_backend.list_executions(
            arn,
            status_filter=response._get_param("statusFilter"),
            redrive_filter=response._get_param("redriveFilter"),
            max_results=response._get_int_param("maxResults"),
            next_token=response._get_param("nextToken"),
        )
        items = []
        for execution in results:
            item = _execution_summary(execution, state_machine.arn)
            items.append(item | _redrive_fields(execution, with_status=False))
        return ActionResult({"executions": items, "nextToken": next_token})

    StepFunctionsParserBackend.redrive_execution = redrive_execution
    StepFunctionsParserBackend.list_executions = list_executions
    StepFunctionResponse.redrive_execution = redrive_execution_response
    StepFunctionResponse.list_executions = list_executions_response


def complete_the_context_object() -> None:
    """$$.Execution on AWS has an ISO-8601 StartTime string, and RedriveCount for STANDARD machines."""
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    original = ExecutionWorker._get_evaluation_environment

    def _get_evaluation_environment(worker):
        env = original(worker)
        execution = env.states.context_object.context_object_data["Execution"]
        start = execution.get("StartTime")
        if isinstance(start, datetime.datetime):
            execution["StartTime"] = (
                start.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            )
        if env.execution_type == "STANDARD":
            execution.setdefault("RedriveCount", 0)
        return env

    _get_evaluation_environment.__wrapped__ = original
    ExecutionWorker._get_evaluation_environment = _get_evaluation_environment


def add_start_sync_execution() -> None:
    """StartSyncExecution (EXPRESS machines) was not implemented (HTTP 500)."""
    from moto.core.responses import ActionResult
    from moto.stepfunctions.exceptions import InvalidExecutionInput
    from moto.stepfunctions.parser.backend.execution import SyncExecution
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.responses import StepFunctionResponse

    def start_sync_execution(backend, state_machine_arn, name=None, execution_input=None, trace_header=None):
        state_machine = backend.describe_state_machine(state_machine_arn)
        if state_machine.type != "EXPRESS":
            raise aws_error(
                "StateMachineTypeNotSupported",
                "This operation is not supported by this type of state machine",
            )
        try:
            json.loads(execution_input or "{}")
        except ValueError as ex:
            raise InvalidExecutionInput(str(ex)) from None
        clone = copy.deepcopy(
            state_machine,
            {id(state_machine.executions): [], id(state_machine.backend): state_machine.backend},
        )
        clone.sm_type = clone.type  # moto's StateMachine hard-codes sm_type "STANDARD"
        exec_name = name or str(uuid.uuid4())
        execution = SyncExecution(
            name=exec_name,
            sm_type=clone.type,
            role_arn=clone.roleArn,
            exec_arn=f"{state_machine.arn.replace(':stateMachine:', ':express:')}:{exec_name}:{uuid.uuid4()}",
            account_id=backend.account_id,
            region_name=backend.region_name,
            state_machine=clone,
            start_date=datetime.datetime.now(tz=datetime.UTC),
            cloud_watch_logging_session=None,
            activity_store={},
            input_data=execution_input or "{}",
            trace_header=trace_header,
        )
        execution.start()  # a SyncExecutionWorker runs to the end before returning
        return execution.to_start_sync_execution_output()

    def start_sync_execution_response(response) -> ActionResult:
        output = response.stepfunction_backend.start_sync_execution(
            response._get_param("stateMachineArn"),
            response._get_param("name"),
            response._get_param("input", if_none="{}"),
            response._get_param("traceHeader"),
        )
        return ActionResult({k: v for k, v in output.items() if v is not None})

    StepFunctionsParserBackend.start_sync_execution = start_sync_execution
    StepFunctionResponse.start_sync_execution = start_sync_execution_response


def report_bad_jsonata_timestamps_as_query_errors() -> None:
    """A JSONata Timestamp that is not ISO-8601 fails with States.QueryEvaluationError on
    AWS ("The Timestamp field cannot be parsed ..."), not States.Runtime."""
    from moto.stepfunctions.parser.api import EvaluationFailedEventDetails, HistoryEventType
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.common.string.string_expression import StringJSONata
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import Timestamp
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    original = Timestamp._create_failure_event

    def _create_failure_event(self, env, timestamp_str):
        if not isinstance(self.string, StringJSONata):
            return original(self, env, timestamp_str)
        error = StatesErrorNameType.StatesQueryEvaluationError
        return FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=error),
            event_type=HistoryEventType.EvaluationFailed,
            event_details=EventDetails(
                evaluationFailedEventDetails=EvaluationFailedEventDetails(
                    error=error.to_name(),
                    cause="The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time "
                    f"format string: {timestamp_str}",
                    location="Timestamp",
                )
            ),
        )

    Timestamp._create_failure_event = _create_failure_event


def word_map_item_errors_as_aws() -> None:
    """AWS quotes the offending value ("Map state input must be an array but was: true")
    where moto printed its Python type, and says "specified for the field 'Items'"."""
    from moto.stepfunctions.parser.api import EvaluationFailedEventDetails, HistoryEventType
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.items.items import ItemsJSONata
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.state_map import StateMap
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    original_execution = StateMap._eval_execution

    def _eval_execution(state, env):
        takes_input_as_items = state.item_reader is None and state.items is None and state.items_path is None
        if takes_input_as_items and env.stack and not isinstance(env.stack[-1], list):
            error = StatesErrorNameType.StatesQueryEvaluationError
            value = to_json_str(env.stack[-1], separators=(",", ":"))
            raise FailureEventException(
                FailureEvent(
                    env=env,
                    error_name=StatesErrorName(typ=error),
                    event_type=HistoryEventType.EvaluationFailed,
                    event_details=EventDetails(
                        evaluationFailedEventDetails=EvaluationFailedEventDetails(
                            error=error.to_name(), cause=f"Map state input must be an array but was: {value}"
                        )
                    ),
                )
            )
        return original_execution(state, env)

    original_items = ItemsJSONata._eval_body

    def _eval_body(items, env):
        try:
            original_items(items, env)
        except FailureEventException as ex:
            details = ex.failure_event.event_details.get("evaluationFailedEventDetails") or {}
            if "cause" in details:
                details["cause"] = details["cause"].replace(
                    "' for the field 'Items'", "' specified for the field 'Items'"
                )
            raise

    _eval_execution.__wrapped__ = original_execution
    _eval_body.__wrapped__ = original_items
    StateMap._eval_execution = _eval_execution
    ItemsJSONata._eval_body = _eval_body


def read_aws_sdk_response_bodies() -> None:
    """An aws-sdk Task answering with a stream (s3:getObject's Body) failed with "cannot
    pickle '_io.BufferedReader'": moto's copy of the engine lost the response
    normalisation that turns streams into strings, as AWS returns them."""
    import botocore.session
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (  # noqa: E501
        StateTaskServiceAwsSdk,
    )

    models = {}

    def _normalise_response(self, response, boto_service_name=None, service_action_name=None):
        if not isinstance(response, dict):
            return
        service = self._get_boto_service_name(boto_service_name)
        action = service_action_name or self.resource.api_action
        if service not in models:
            models[service] = botocore.session.get_session().get_service_model(service)
        operation = models[service].operation_model(action[0].upper() + action[1:])
        if operation.output_shape is not None:
            self._from_boto_response(response, operation.output_shape)

    StateTaskServiceAwsSdk._normalise_response = _normalise_response


SYNC_POLL_S = 0.1


def wake_sync_tasks_when_jobs_end() -> None:
    """moto's engine polls a .sync task every 0.5 s; AWS learns of a job's end from an event
    within moments. The poll's sleep here ends as soon as a SageMaker job ends
    (harness.emulator.job_events), and is at most 0.1 s for other .sync integrations."""
    import time
    import types

    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback,
    )

    from harness.emulator import job_events

    callback._DELAY_SECONDS_SYNC_CONDITION_CHECK = SYNC_POLL_S
    # The module's own `time`, with a sleep that a job's end interrupts.
    callback.time = types.SimpleNamespace(**{**vars(time), "sleep": job_events.wait})


def name_aws_sdk_errors_as_aws() -> None:
    """aws-sdk Task errors named as AWS names them (S3.NoSuchKeyException): patches.interpreter."""
    from harness.emulator.patches import interpreter

    interpreter.name_aws_sdk_errors_as_aws("moto")


def call_aws_sdk_services_by_their_boto_names() -> None:
    """aws-sdk:sagemakerruntime calls boto3's sagemaker-runtime: patches.interpreter."""
    from harness.emulator.patches import interpreter

    interpreter.call_aws_sdk_services_by_their_boto_names("moto")


HISTORY_PAGE_DEFAULT = 100  # AWS's page size when maxResults is absent or 0
HISTORY_PAGE_MAX = 1000


def page_execution_histories() -> None:
    """GetExecutionHistory answered every event oldest first whatever was asked; AWS pages
    (maxResults, nextToken) and honours reverseOrder, which a watcher needs to read only
    the newest events. The token names the next event's id, so paging survives events
    added meanwhile."""
    from moto.core.responses import ActionResult
    from moto.stepfunctions.exceptions import InvalidToken
    from moto.stepfunctions.responses import StepFunctionResponse

    def get_execution_history(response) -> ActionResult:
        arn = response._get_param("executionArn")
        events = list(response.stepfunction_backend.get_execution_history(arn)["events"])
        reverse = bool(response._get_param("reverseOrder"))
        size = int(response._get_param("maxResults") or HISTORY_PAGE_DEFAULT)
        if not 0 < size <= HISTORY_PAGE_MAX:
            raise aws_error("ValidationException", f"maxResults must be between 0 and {HISTORY_PAGE_MAX}")
        token = response._get_param("nextToken")
        if reverse:
            events.reverse()
        if token is not None:
            if not token.isdigit():
                raise InvalidToken(f"{token!r} was not issued by GetExecutionHistory")
            after = int(token)
            events = [e for e in events if (e["id"] <= after if reverse else e["id"] >= after)]
        answer = {"events": events[:size]}
        if len(events) > size:
            answer["nextToken"] = str(events[size]["id"])
        return ActionResult(answer)

    StepFunctionResponse.get_execution_history = get_execution_history


# The fields being evaluated, outermost first (each execution runs in its own thread).
_FIELD_PATH: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("asl_field_path", default=())


def name_the_field_of_undefined_jsonata_results() -> None:
    """AWS says which field's expression gave nothing: "The JSONata expression '$x'
    specified for the field 'Output/result' returned nothing (undefined)." moto's
    engine left the field out; track the field path while Output and Assign evaluate."""
    from moto.stepfunctions.parser.asl.component.common.assign.assign_decl import AssignDecl
    from moto.stepfunctions.parser.asl.component.common.assign.assign_template_binding import (
        AssignTemplateBinding,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.jsonata.jsonata_template_binding import (
        JSONataTemplateBinding,
    )
    from moto.stepfunctions.parser.asl.component.common.outputdecl import Output
    from moto.stepfunctions.parser.asl.jsonata import validations

    def within_field(cls, field_name) -> None:
        original = cls._eval_body

        def _eval_body(self, env):
            token = _FIELD_PATH.set((*_FIELD_PATH.get(), field_name(self)))
            try:
                original(self, env)
            finally:
                _FIELD_PATH.reset(token)

        _eval_body.__wrapped__ = original
        cls._eval_body = _eval_body

    within_field(Output, lambda component: "Output")
    within_field(AssignDecl, lambda component: "Assign")
    within_field(AssignTemplateBinding, lambda component: component.identifier)
    within_field(JSONataTemplateBinding, lambda component: component.identifier)

    original_check = validations._validate_null_output

    def _validate_null_output(env, expression: str, rich_jsonata_expression: str) -> None:
        try:
            original_check(env, expression, rich_jsonata_expression)
        except FailureEventException as ex:
            path = "/".join(_FIELD_PATH.get())
            details = (ex.failure_event.event_details or {}).get("evaluationFailedEventDetails") or {}
            if path and "cause" in details:
                details["cause"] = details["cause"].replace(
                    "' returned nothing", f"' specified for the field '{path}' returned nothing", 1
                )
            raise

    _validate_null_output.__wrapped__ = original_check
    validations._validate_null_output = _validate_null_output


def add_validate_state_machine_definition() -> None:
    """moto lacks ValidateStateMachineDefinition, which a deployer calls to refuse a broken
    definition before it touches a stack; answer it from harness.emulator.asl_validation."""
    from moto.core.responses import ActionResult
    from moto.stepfunctions.responses import StepFunctionResponse

    from harness.emulator import asl_validation

    def validate_state_machine_definition(response) -> ActionResult:
        diagnostics = asl_validation.validate(
            response._get_param("definition"), response._get_param("type") or "STANDARD"
        )
        return ActionResult(
            {"result": "FAIL" if diagnostics else "OK", "diagnostics": diagnostics, "truncated": False}
        )

    StepFunctionResponse.validate_state_machine_definition = validate_state_machine_definition


def run_mocked_test_cases() -> None:
    """StartExecution (and StartSyncExecution) on `<state machine ARN>#<test case>` runs a test
    case of the mock configuration, as Step Functions Local does. moto's engine evaluates test
    cases, but its backend neither reads the ARN's test case nor hands one to the worker, and
    its loader is a stub (harness.emulator.sfn_mocking is ours)."""
    from moto.stepfunctions.exceptions import InvalidName
    from moto.stepfunctions.parser.backend.execution import Execution, SyncExecution
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    from harness.emulator import sfn_mocking

    def with_test_case(original):
        def start(backend, state_machine_arn, name=None, execution_input=None, trace_header=None):
            arn, marked, test_case = (state_machine_arn or "").partition("#")
            if not marked:
                return original(backend, state_machine_arn, name, execution_input, trace_header)
            machine = backend.describe_state_machine(arn)
            config = sfn_mocking.configured
            if config is None:
                raise InvalidName(
                    f"Invalid mock test case name '{test_case}' for state machine '{machine.name}': "
                    "the local AWS has no mock configuration (start it with --mock-config FILE "
                    "or SFN_MOCK_CONFIG)"
                )
            try:
                case = config.test_case(
                    machine.name, test_case, sfn_mocking.state_names(json.loads(machine.definition))
                )
            except sfn_mocking.MockConfigError as ex:
                raise InvalidName(f"Invalid mock test case name '{test_case}': {ex}") from None
            token = _MOCK_TEST_CASE.set(case)
            try:
                return original(backend, arn, name, execution_input, trace_header)
            finally:
                _MOCK_TEST_CASE.reset(token)

        start.__wrapped__ = original
        return start

    def with_worker_test_case(original):
        def _get_start_execution_worker(execution):
            worker = original(execution)
            case = _MOCK_TEST_CASE.get()
            if case is not None:
                worker._mock_test_case = case
            return worker

        _get_start_execution_worker.__wrapped__ = original
        return _get_start_execution_worker

    StepFunctionsParserBackend.start_execution = with_test_case(StepFunctionsParserBackend.start_execution)
    StepFunctionsParserBackend.start_sync_execution = with_test_case(
        StepFunctionsParserBackend.start_sync_execution
    )
    for cls in (Execution, SyncExecution):
        cls._get_start_execution_worker = with_worker_test_case(cls.__dict__["_get_start_execution_worker"])


def add_test_state() -> None:
    """moto lacks TestState (one state, one input, inspection data); answer it from
    harness.emulator.test_state, which runs the engine's own TestState program."""
    from moto.core.responses import ActionResult
    from moto.stepfunctions.responses import StepFunctionResponse

    from harness.emulator import test_state

    def test_state_response(response) -> ActionResult:
        return ActionResult(
            test_state.test_state(
                definition=response._get_param("definition"),
                account_id=response.current_account,
                region=response.region,
                role_arn=response._get_param("roleArn"),
                state_input=response._get_param("input"),
                inspection_level=response._get_param("inspectionLevel"),
                variables=response._get_param("variables"),
                state_name=response._get_param("stateName"),
                mock=response._get_param("mock"),
                state_configuration=response._get_param("stateConfiguration"),
            )
        )

    StepFunctionResponse.test_state = test_state_response


def record_no_task_success_after_a_stop() -> None:
    """A `.sync` task whose execution is stopped returned nothing, and the engine recorded a
    TaskSucceeded with output null before ExecutionAborted; on AWS a stopped task records no
    outcome, so a reader of the history sees no success that never was."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
        StateTaskService,
    )

    original = StateTaskService._after_eval_execution

    def _after_eval_execution(service, env, *args, **kwargs):
        if not env.is_running():
            return
        original(service, env, *args, **kwargs)

    _after_eval_execution.__wrapped__ = original
    StateTaskService._after_eval_execution = _after_eval_execution


def give_each_parse_its_own_query_language_scopes() -> None:
    """The ASL preprocessor kept its stack of QueryLanguage scopes in a class attribute, so
    definitions parsed at once in two threads (two executions starting together) pushed and
    popped one shared stack: one failed with "Cannot downgrade from JSONata context to a
    JSONPath context" and, its worker thread dead, stayed RUNNING for ever."""
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    original = Preprocessor.__init__

    def __init__(preprocessor, *args, **kwargs):
        original(preprocessor, *args, **kwargs)
        preprocessor._query_language_per_scope = []

    __init__.__wrapped__ = original
    Preprocessor.__init__ = __init__


def fail_executions_whose_engine_raised() -> None:
    """An unexpected exception in an execution's worker thread killed the thread and left the
    execution RUNNING for ever; it now fails the execution with States.Runtime, naming it."""
    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    original = ExecutionWorker._execution_logic

    def _execution_logic(worker):
        try:
            original(worker)
        except Exception as ex:  # the engine's own failure: the execution must still end
            if worker.env is None:
                worker.env = worker._get_evaluation_environment()
            cause = f"the local AWS's engine failed: {type(ex).__name__}: {' '.join(str(ex).split())}"
            worker.env.set_error(ExecutionFailedEventDetails(error="States.Runtime", cause=cause))
            worker._execution_communication.terminated()

    _execution_logic.__wrapped__ = original
    ExecutionWorker._execution_logic = _execution_logic


def refuse_state_machines_aws_would_refuse() -> None:
    """CreateStateMachine on a name in use answered with the old machine whatever the new
    definition (so an edited workflow ran stale while its SDK said "created"), and Create and
    UpdateStateMachine took definitions whose graph ValidateStateMachineDefinition refuses (a
    Next naming no state). As on AWS: the same name, definition, role and type is idempotent,
    anything else is StateMachineAlreadyExists; a refused definition is InvalidDefinition."""
    from moto.stepfunctions.exceptions import StateMachineDoesNotExist
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.utilities.utils import get_partition

    from harness.emulator import asl_validation

    def checked(definition: str | None, machine_type: str | None) -> None:
        if definition is None:
            return
        errors = [
            d
            for d in asl_validation.validate(definition, machine_type or "STANDARD")
            if d["severity"] == "ERROR"
        ]
        if errors:
            first = errors[0]
            where = f" at {first['location']}" if first.get("location") else ""
            raise aws_error(
                "InvalidDefinition",
                f"Invalid State Machine Definition: '{first['code']}: {first['message']}{where}'",
            )

    original_create = StepFunctionsParserBackend.create_state_machine
    original_update = StepFunctionsParserBackend.update_state_machine

    def create_state_machine(backend, name, definition, roleArn, *args, **kwargs):
        machine_type = kwargs.get("sm_type") or "STANDARD"
        checked(definition, machine_type)
        return _create(backend, name, definition, roleArn, machine_type, *args, **kwargs)

    def _create(backend, name, definition, roleArn, machine_type, *args, **kwargs):
        partition = get_partition(backend.region_name)
        arn = f"arn:{partition}:states:{backend.region_name}:{backend.account_id}:stateMachine:{name}"
        try:
            existing = backend.describe_state_machine(arn)
        except StateMachineDoesNotExist:
            existing = None
        if existing is not None and (
            existing.definition != definition or existing.roleArn != roleArn or existing.type != machine_type
        ):
            raise aws_error("StateMachineAlreadyExists", f"State Machine Already Exists: '{arn}'")
        return original_create(backend, name, definition, roleArn, *args, **kwargs)

    def update_state_machine(backend, arn, definition=None, *args, **kwargs):
        if definition is not None:
            checked(definition, backend.describe_state_machine(arn).type)
        return original_update(backend, arn, definition, *args, **kwargs)

    create_state_machine.__wrapped__ = original_create
    update_state_machine.__wrapped__ = original_update
    StepFunctionsParserBackend.create_state_machine = create_state_machine
    StepFunctionsParserBackend.update_state_machine = update_state_machine


def give_engine_errors_their_aws_codes() -> None:
    """The engine's exception classes (moto.stepfunctions.parser.api) declare their AWS code as
    `code` but inherit moto's AWSError, which reads `TYPE`: every one of them reached the client
    as `"__type": null` (InvalidExecutionInput, InvalidDefinition, ValidationException, ...).
    Give each its code and status."""
    from moto.core.exceptions import AWSError
    from moto.stepfunctions.parser import api

    for value in vars(api).values():
        if (
            isinstance(value, type)
            and issubclass(value, AWSError)
            and value.__dict__.get("TYPE") is None
            and isinstance(value.__dict__.get("code"), str)
        ):
            value.TYPE = value.__dict__["code"]
            value.STATUS = value.__dict__.get("status_code", 400)


def sign_engine_calls_as_the_execution_role() -> None:
    """moto's engine makes every service call of a state machine with one fixed key ("ak"),
    though it works out the role each Task acts as (the execution's role, or the Task's
    Credentials.RoleArn); on AWS each call is the role's. Here each call is signed with
    credentials the local AWS maps to that role (harness.emulator.iam.principals), so IAM
    evaluation sees the state machine's own permissions."""
    import sys

    # every module that calls it, imported first, so each one's name is replaced below
    import moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_factory  # noqa: F401, E501
    from moto.stepfunctions.parser.asl.utils import boto_client

    from harness.emulator.iam import principals

    upstream = boto_client.boto_client_for

    def boto_client_for(region: str, service: str, state_credentials=None):
        client = upstream(region, service, state_credentials)
        role_arn = getattr(state_credentials, "role_arn", None)
        if role_arn:
            credentials = principals.credentials_for(role_arn, "StepFunctions")
            client._request_signer._credentials = _frozen_credentials(credentials)
        return client

    # Every module of the engine imported the function by name: replace it in each.
    for name, module in list(sys.modules.items()):
        engine = name.startswith("moto.stepfunctions.parser")
        if engine and getattr(module, "boto_client_for", None) is upstream:
            module.boto_client_for = boto_client_for
    boto_client.boto_client_for = boto_client_for


def _frozen_credentials(credentials: dict):
    from botocore.credentials import Credentials

    return Credentials(
        credentials["AWS_ACCESS_KEY_ID"],
        credentials["AWS_SECRET_ACCESS_KEY"],
        credentials["AWS_SESSION_TOKEN"],
    )
