"""What the local AWS serves, operation by operation, generated from botocore's models and
the emulator itself (docs/coverage.md; `python -m harness emulator coverage`).

Each operation of each service the local AWS serves is one of:
- **changed**: served, with the project's own code in its path (a handler or backend
  method of the project's, or one a patch under harness/emulator/patches/ wraps); the
  page names the tests that call it;
- **upstream**: served by moto as it is;
- **refused**: answered with UnsupportedOperation naming it, because moto has no handler
  or because the local AWS does not do the work (harness/emulator/refused.py says why);
- **unchecked**: an operation moto has no handler of that name for, in a service the request
  guard does not check by operation (S3 and SageMaker Runtime, routed by path; CloudWatch,
  whose SDKs speak CBOR): nothing refuses it, so its answer is moto's.

The page is generated, never edited: tests/unit/test_coverage_page.py fails when the
emulator and the page disagree.
"""

from __future__ import annotations

import ast
import functools
import importlib
from dataclasses import dataclass
from pathlib import Path

from harness.emulator import refused, request_guard

# botocore service -> (the responses class that serves it, the backend class behind it)
SERVICES = {
    "cloudwatch": (
        "moto.cloudwatch.responses:CloudWatchResponse",
        "moto.cloudwatch.models:CloudWatchBackend",
    ),
    "cloudformation": (
        "moto.cloudformation.responses:CloudFormationResponse",
        "moto.cloudformation.models:CloudFormationBackend",
    ),
    "ecr": ("moto.ecr.responses:ECRResponse", "moto.ecr.models:ECRBackend"),
    "events": ("moto.events.responses:EventsHandler", "moto.events.models:EventsBackend"),
    "iam": ("moto.iam.responses:IamResponse", "moto.iam.models:IAMBackend"),
    "kms": ("moto.kms.responses:KmsResponse", "moto.kms.models:KmsBackend"),
    "lambda": ("moto.awslambda.responses:LambdaResponse", "moto.awslambda.models:LambdaBackend"),
    "logs": ("moto.logs.responses:LogsResponse", "moto.logs.models:LogsBackend"),
    "s3": ("moto.s3.responses:S3Response", "moto.s3.models:S3Backend"),
    "sagemaker": (
        "harness.emulator.sagemaker.responses:LocalSageMakerResponse",
        "harness.emulator.sagemaker.models:LocalSageMakerBackend",
    ),
    "sagemaker-runtime": (
        "moto.sagemakerruntime.responses:SageMakerRuntimeResponse",
        "moto.sagemakerruntime.models:SageMakerRuntimeBackend",
    ),
    "stepfunctions": (
        "moto.stepfunctions.responses:StepFunctionResponse",
        "moto.stepfunctions.parser.models:StepFunctionsParserBackend",
    ),
    "sts": ("moto.sts.responses:TokenResponse", "moto.sts.models:STSBackend"),
}
CHANGED, UPSTREAM, REFUSED, UNCHECKED = "changed", "upstream", "refused", "unchecked"
TESTS = Path(__file__).resolve().parents[2] / "tests"
# The services whose every request the request guard checks by operation.
GUARDED = {service for service, _ in request_guard.SERVICES.values()} | set(request_guard.QUERY_SERVICES)


@dataclass(frozen=True)
class Operation:
    service: str
    name: str
    status: str
    why: str = ""  # refused: the reason
    tests: tuple[str, ...] = ()  # changed: the tests that call it


def operations() -> list[Operation]:
    """Every operation of every served service, with its status. Installs every patch and hook
    the emulator installs (into this process: run it in a process of its own, as the CLI does)."""
    import tempfile

    import botocore.session

    from harness.emulator import patches
    from harness.emulator.ecr_store import EcrStore
    from harness.emulator.execution_store import ExecutionStore
    from harness.emulator.iam_store import IamStore
    from harness.emulator.machine_store import StateMachineStore
    from harness.emulator.registry import LocalRegistry
    from harness.emulator.s3_store import S3Store
    from harness.emulator.stack_store import StackStore

    patches.apply_patches()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        patches.keep_state_in(
            S3Store(root / "s3"),
            StackStore(root / "stacks"),
            StateMachineStore(root / "sm"),
            IamStore(root / "iam"),
            EcrStore(root / "ecr"),
            ExecutionStore(root / "executions"),
        )
        patches.back_ecr_with(LocalRegistry(root / "registry"))  # hooks only: nothing is started
        patches.run_lambda_functions_in(None, root / "lambda", "none")  # hooks only: nothing runs
    session = botocore.session.get_session()
    calls = _test_calls()
    found = []
    for service, (responses_path, backend_path) in sorted(SERVICES.items()):
        responses, backend = _load(responses_path), _load(backend_path)
        for name in sorted(session.get_service_model(service).operation_names):
            found.append(_classify(service, name, responses, backend, calls))
    return found


def _classify(service: str, name: str, responses: type, backend: type, calls: dict) -> Operation:
    from moto.core.utils import camelcase_to_underscores

    snake = camelcase_to_underscores(name)
    why = refused.reason(service, name)
    if why:
        return Operation(service, name, REFUSED, why)
    handler = getattr(responses, snake, None)
    if _ours(handler) or _ours(getattr(backend, snake, None)):
        return Operation(service, name, CHANGED, tests=tuple(calls.get((service, snake), ())))
    if handler is not None:
        return Operation(service, name, UPSTREAM)
    if service in GUARDED:
        return Operation(service, name, REFUSED, "no handler: moto does not implement it")
    return Operation(
        service, name, UNCHECKED, "no handler of this name; the guard does not check this service"
    )


def _ours(function) -> bool:
    """The function, or anything it wraps, is the project's code."""
    while function is not None:
        if getattr(function, "__module__", "").startswith("harness."):
            return True
        function = getattr(function, "__wrapped__", None)
    return False


def _load(path: str) -> type:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@functools.cache
def _test_calls() -> dict[tuple[str, str], list[str]]:
    """(service, method) -> the tests ("file::function") that call a client's method of that
    name, in files that make a client of that service."""
    calls: dict[tuple[str, str], list[str]] = {}
    for path in sorted(TESTS.rglob("test_*.py")):
        source = path.read_text()
        services = [s for s in SERVICES if f'"{s}"' in source or f"'{s}'" in source]
        for function in ast.walk(ast.parse(source)):
            if not isinstance(function, ast.FunctionDef) or not function.name.startswith("test_"):
                continue
            methods = {
                node.func.attr
                for node in ast.walk(function)
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            }
            where = f"{path.relative_to(TESTS.parent)}::{function.name}"
            for service in services:
                for method in methods:
                    calls.setdefault((service, method), []).append(where)
    return calls


def render(found: list[Operation]) -> str:
    """The coverage page as Markdown (deterministic: the same emulator gives the same page)."""
    lines = [
        "# What the local AWS serves",
        "",
        "Generated by `python -m harness emulator coverage --output docs/coverage.md` from botocore's",
        "service models and the emulator; do not edit. **changed**: served with the project's own code",
        "in its path (the tests that call it are named); **upstream**: served by moto as it is;",
        "**refused**: answered with `UnsupportedOperation` (HTTP 501) naming the operation and why;",
        "**unchecked**: an operation moto has no handler of that name for, in a service the request",
        "guard does not check by operation (S3, SageMaker Runtime, CloudWatch): nothing refuses it, so",
        "moto answers.",
        "",
        "| service | operations | changed | upstream | refused | unchecked |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    services = sorted({op.service for op in found})
    for service in services:
        mine = [op for op in found if op.service == service]
        counts = [
            sum(op.status == status for op in mine) for status in (CHANGED, UPSTREAM, REFUSED, UNCHECKED)
        ]
        lines.append(f"| {service} | {len(mine)} | " + " | ".join(map(str, counts)) + " |")
    for service in services:
        lines += ["", f"## {service}", "", "| operation | status | pinned by / why |", "|---|---|---|"]
        for op in (op for op in found if op.service == service):
            detail = ", ".join(f"`{t}`" for t in op.tests[:3]) if op.status == CHANGED else op.why
            if op.status == CHANGED and not op.tests:
                detail = "no test calls it"
            lines.append(f"| {op.name} | {op.status} | {detail} |")
    return "\n".join(lines) + "\n"
