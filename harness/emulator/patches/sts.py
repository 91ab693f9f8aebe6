"""Patches to moto's STS."""

from __future__ import annotations


def name_local_role_sessions_as_aws() -> None:
    """GetCallerIdentity with credentials the local AWS handed out (a job's, the Step Functions
    engine's, the user's shell's: harness.emulator.iam.principals) answered moto's default
    `user/moto`; AWS answers the role session: `assumed-role/<role>/<session>`, which is what
    a job's code, or an SDK looking for its execution role, reads."""
    from moto.iam.models import iam_backends
    from moto.sts.models import STSBackend

    from harness.emulator.iam import principals

    upstream = STSBackend.get_caller_identity
    if getattr(upstream, "__wrapped__", None) is not None:
        return  # already applied

    def get_caller_identity(backend, access_key_id: str, region: str):
        principal = principals.of_access_key(access_key_id)
        if principal is None:
            return upstream(backend, access_key_id, region)
        partition = principal.role_arn.split(":")[1]
        try:
            role_id = iam_backends[principal.account][partition].get_role_by_arn(principal.role_arn).id
        except Exception:  # moto's NotFoundException: the role has gone, the session is still named
            role_id = None
        return principals.user_id(principal, role_id), principal.arn, principal.account

    get_caller_identity.__wrapped__ = upstream
    STSBackend.get_caller_identity = get_caller_identity
