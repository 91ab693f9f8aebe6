"""The project's SageMaker inside LocalStack (`--engine localstack`), by LocalStack's own plugins.

Loaded by LocalStack's Python, never by the harness's: it imports only LocalStack and the
modules of harness.emulator written for both engines (asl_engines, sfn_sagemaker, the patches
of patches.interpreter) or for this one (localstack_engine, patches.localstack).
harness.emulator.localstack_engine starts LocalStack with this module's entry points on its
path (localstack_engine.ENTRY_POINTS) and the address of the SageMaker backend (the default
engine's code, jobs really running in Docker) in BACKEND_URL_VARIABLE.

- Providers (namespace `localstack.aws.provider`, named "mlharness", chosen by LocalStack's
  PROVIDER_OVERRIDE_<SERVICE>): sagemaker, sagemaker-runtime, ecr and lambda. Each has nothing of its own:
  its dispatch table forwards every operation, as received, to the backend, which answers as the
  default engine does.
- Hooks (`localstack.hooks.on_infra_start`): apply the LocalStack list of
  harness.emulator.patches (LocalStack's Step Functions gets the `sagemaker:*` Task integration,
  `.sync` included, and the default engine's fixes of the interpreter both share; two fixes of
  LocalStack 4.14's EventBridge and CloudFormation make schedules work as on AWS: a rule with a
  fixed input starts its state machine, and a stack update changes a rule), and route the local
  AWS's own endpoints (/_mlharness/*: info, timeline, fidelity report, step cache) to the
  backend.
"""

from __future__ import annotations

import os

from localstack.runtime import hooks
from localstack.services.plugins import Service, aws_provider

from harness.emulator.localstack_engine import BACKEND_URL_VARIABLE, OWN_PATH_PREFIX, PROVIDER_NAME

ACCOUNT_HEADER = "x-moto-account-id"  # the backend (moto) takes a request's account from it


class ForwardedProvider:
    """A service LocalStack serves by forwarding: it implements nothing itself."""

    def __init__(self, service: str):
        self.service = service


def forwarding_service(name: str) -> Service:
    from localstack.aws.forwarder import AwsRequestProxy
    from localstack.aws.spec import load_service

    # Parsed and serialized again by LocalStack: its own clients (Step Functions' Tasks) take
    # answers as data, not as HTTP.
    proxy = AwsRequestProxy(os.environ[BACKEND_URL_VARIABLE])

    def forward(context, request=None):
        # The request as received (a parsed one would be serialized again, and a body LocalStack
        # left as a stream could not be), in the account LocalStack resolved for it: the
        # backend keeps the jobs in that account.
        context.request.headers[ACCOUNT_HEADER] = context.account_id
        return proxy(context)

    table = dict.fromkeys(load_service(name).operation_names, forward)
    return Service.for_provider(ForwardedProvider(name), dispatch_table_factory=lambda _: table)


@aws_provider(api="sagemaker", name=PROVIDER_NAME)
def sagemaker_service() -> Service:
    return forwarding_service("sagemaker")


@aws_provider(api="sagemaker-runtime", name=PROVIDER_NAME)
def sagemaker_runtime_service() -> Service:
    return forwarding_service("sagemaker-runtime")


@aws_provider(api="ecr", name=PROVIDER_NAME)
def ecr_service() -> Service:
    return forwarding_service("ecr")


@aws_provider(api="lambda", name=PROVIDER_NAME)
def lambda_service() -> Service:
    return forwarding_service("lambda")


@hooks.on_infra_start()
def apply_patches() -> None:
    """Every change this project makes to LocalStack: harness.emulator.patches' LocalStack list."""
    from harness.emulator import patches

    patches.apply_localstack_patches()


@hooks.on_infra_start()
def route_own_endpoints_to_the_backend() -> None:
    from localstack.http.proxy import Proxy
    from localstack.services.edge import ROUTER

    proxy = Proxy(forward_base_url=os.environ[BACKEND_URL_VARIABLE])

    def forward(request, path: str = ""):
        return proxy.forward(request, forward_path=request.path)

    ROUTER.add(OWN_PATH_PREFIX, endpoint=forward)
    ROUTER.add(f"{OWN_PATH_PREFIX}/<path:path>", endpoint=forward)
