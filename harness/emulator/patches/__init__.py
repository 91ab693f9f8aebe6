"""Every change the emulator makes to moto.

One module per service (and `interpreter` for the ASL interpreter both engines run,
`localstack` for LocalStack's own), one function per patch, each naming the upstream
defect it works around and importing the upstream names it touches inside itself.
Two lists: `apply_patches()` applies the moto ones one at a time (a patch that no
longer fits fails as PatchFailed naming it), `apply_localstack_patches()` the
LocalStack ones inside LocalStack; `keep_state_in()`, `back_ecr_with()` and
`run_lambda_functions_in()` the write-through, registry and Lambda hooks, which need the
emulator's stores, registry and execution environments.
tests/unit/test_patches.py checks the upstream behaviour each patch relies on, so an
upgrade that changes it fails by the patch's name; `tox -e upstream` runs them against
the newest moto on the index.
"""

from __future__ import annotations

__all__ = [
    "PatchFailed",
    "apply",
    "apply_localstack_patches",
    "apply_patches",
    "back_ecr_with",
    "keep_state_in",
    "run_lambda_functions_in",
]

_applied = False


class PatchFailed(RuntimeError):
    """A patch no longer applies to the installed upstream (a name moved or changed)."""


def _moto_patches() -> list:
    from harness.emulator.patches import (
        awslambda,
        cloudformation,
        ecr,
        iam,
        logs,
        s3,
        sagemaker,
        stepfunctions,
        sts,
    )

    return [
        stepfunctions.enable_state_machine_execution,
        stepfunctions.route_cloudformation_state_machines_to_executing_backend,
        stepfunctions.evaluate_jsonata_in_python,
        stepfunctions.allow_states_errors_in_fail_states,
        stepfunctions.make_stop_execution_synchronous,
        stepfunctions.name_unnamed_executions,
        stepfunctions.describe_executions_as_aws,
        stepfunctions.describe_state_machines_for_executions_as_aws,
        stepfunctions.complete_the_context_object,
        stepfunctions.add_start_sync_execution,
        stepfunctions.report_bad_jsonata_timestamps_as_query_errors,
        stepfunctions.word_map_item_errors_as_aws,
        stepfunctions.read_aws_sdk_response_bodies,
        stepfunctions.wake_sync_tasks_when_jobs_end,
        stepfunctions.name_aws_sdk_errors_as_aws,
        stepfunctions.call_aws_sdk_services_by_their_boto_names,
        stepfunctions.page_execution_histories,
        stepfunctions.name_the_field_of_undefined_jsonata_results,
        stepfunctions.add_validate_state_machine_definition,
        stepfunctions.run_mocked_test_cases,
        stepfunctions.allow_states_errors_in_mocked_throws,
        stepfunctions.add_test_state,
        stepfunctions.record_no_task_success_after_a_stop,
        stepfunctions.keep_task_timeouts_on_the_stack_after_a_stop,
        stepfunctions.evaluate_role_arn_path_keys,
        stepfunctions.give_each_parse_its_own_query_language_scopes,
        stepfunctions.fail_executions_whose_engine_raised,
        stepfunctions.refuse_state_machines_aws_would_refuse,
        stepfunctions.give_engine_errors_their_aws_codes,
        stepfunctions.add_redrive_execution,
        stepfunctions.redrive_only_what_did_not_succeed,
        sagemaker.register_sagemaker_service_integration,
        sagemaker.install_local_sagemaker_backend,
        sagemaker.route_invocations_to_served_models,
        *cloudformation.PATCHES,
        iam.load_aws_managed_policies,
        iam.deploy_role_policies_as_aws,
        iam.add_policy_simulation,
        sts.name_local_role_sessions_as_aws,
        s3.refuse_invalid_bucket_names,
        s3.check_content_md5,
        logs.filter_log_events_by_stream_prefix,
        awslambda.refuse_functions_the_local_aws_cannot_run,
        ecr.keep_registry_scanning_rules_a_list,
        stepfunctions.read_definite_paths_after_an_index_as_values,
        stepfunctions.sign_engine_calls_as_the_execution_role,  # last: after every engine module is loaded
    ]


def _localstack_patches() -> list:
    """LocalStack's own engine (`--engine localstack`): the interpreter's fixes both engines get,
    the SageMaker Task integration, and LocalStack's own defects; applied inside LocalStack."""
    from harness.emulator.patches import interpreter, localstack

    return [
        (interpreter.add_sagemaker_task_integration, "localstack"),
        (interpreter.name_aws_sdk_errors_as_aws, "localstack"),
        (interpreter.call_aws_sdk_services_by_their_boto_names, "localstack"),
        (interpreter.evaluate_jsonata_in_python, "localstack"),
        (interpreter.pass_strings_to_blobs_as_they_are, "localstack"),
        (interpreter.keep_task_timeouts_on_the_stack_after_a_stop, "localstack"),
        (interpreter.evaluate_role_arn_path_keys, "localstack"),
        (localstack.start_state_machines_from_rules_with_a_fixed_input,),
        (localstack.update_event_rules_in_stacks,),
    ]


def apply(patch, *arguments, upstream: str = "moto") -> None:
    """Apply one patch; one that no longer fits upstream fails by its own name."""
    try:
        patch(*arguments)
    except Exception as ex:
        from importlib.metadata import version

        raise PatchFailed(
            f"{patch.__module__}.{patch.__name__} no longer applies to {upstream} {version(upstream)}: "
            f"{type(ex).__name__}: {ex}"
        ) from ex


def apply_patches() -> None:
    """Apply the moto patches once per process (idempotent), one at a time, in order."""
    global _applied
    if _applied:
        return
    for patch in _moto_patches():
        apply(patch)
    _applied = True


def apply_localstack_patches() -> None:
    """Inside LocalStack's Python: its list, one at a time, in order."""
    for patch, *arguments in _localstack_patches():
        apply(patch, *arguments, upstream="localstack-core")


def keep_state_in(s3_store, stack_store, machine_store, iam_store, ecr_store, execution_store) -> None:
    """Write S3, stack changes, API-made state machines, roles and policies, ECR repositories,
    and ended executions through to their stores (once per process, after each store has
    restored what it kept)."""
    from harness.emulator.patches import persistence

    apply(persistence.write_s3_through, s3_store)
    apply(persistence.record_stack_changes, stack_store)
    apply(persistence.record_api_state_machines, machine_store)
    apply(persistence.record_api_iam, iam_store)
    apply(persistence.record_api_ecr, ecr_store)
    apply(persistence.keep_ended_executions, execution_store)


def back_ecr_with(registry) -> None:
    """ECR's repositories, tokens and images are the local registry's (a started LocalRegistry)."""
    from harness.emulator.patches import ecr

    apply(ecr.point_repositories_at, registry)
    apply(ecr.serve_images_from, registry.client())


def run_lambda_functions_in(functions, work_dir, runtime_image: str, behind_localstack: bool = False) -> None:
    """Lambda's invocations run in `functions` (a harness.emulator.functions.service.Functions);
    behind LocalStack, functions' roles are LocalStack's."""
    from harness.emulator.patches import awslambda

    apply(awslambda.run_invocations_in, functions, work_dir, runtime_image)
    if behind_localstack:
        apply(awslambda.leave_roles_to_the_front)
