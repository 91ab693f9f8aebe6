"""Patches to moto's ECR: repositories live in a real registry on this machine.

moto hands out `<account>.dkr.ecr.<region>.amazonaws.com/<name>` URIs and tokens
for that host, so a `docker push` would try to reach AWS. With a local registry
running (harness/emulator/registry.py), URIs and the token's proxy endpoint name it
instead: login, push and pull by digest work and nothing leaves the machine.
"""

from __future__ import annotations

from base64 import b64encode
from datetime import UTC, datetime, timedelta


def point_repositories_at(registry: str) -> None:
    """registry: host:port of the local registry."""
    from moto.core.responses import ActionResult
    from moto.ecr.models import Repository
    from moto.ecr.responses import ECRResponse

    original_init = Repository.__init__

    def __init__(repository, *args, **kwargs):
        original_init(repository, *args, **kwargs)
        repository.uri = f"{registry}/{repository.name}"

    def get_authorization_token(response) -> ActionResult:
        registry_ids = response._get_param("registryIds") or [response.current_account]
        token = b64encode(b"AWS:local-registry").decode()
        expires = datetime.now(UTC) + timedelta(hours=12)
        data = [
            {"authorizationToken": token, "expiresAt": expires, "proxyEndpoint": f"http://{registry}"}
            for _ in registry_ids
        ]
        return ActionResult({"authorizationData": data})

    __init__.__wrapped__ = original_init
    Repository.__init__ = __init__
    ECRResponse.get_authorization_token = get_authorization_token
