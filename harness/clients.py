"""The one factory through which every boto3 client of the harness is made.

For the local target it pins every client to the local endpoint with fake
credentials, whatever the environment says (AWS_PROFILE, AWS_ENDPOINT_URL, real
keys), and refuses an endpoint that is not on this machine.
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlparse

import boto3
import botocore.session
from botocore.client import BaseClient
from botocore.config import Config

LOCAL_CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
_LOCAL_NAMES = {"localhost"}


class EndpointRefused(ValueError):
    pass


def is_local_endpoint(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host in _LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback


def _isolated_session() -> botocore.session.Session:
    """A botocore session that reads no profile, config file or credentials file."""
    unset = (None, None, None, None)
    return botocore.session.Session(
        session_vars={
            "profile": unset,
            "config_file": (None, None, os.devnull, None),
            "credentials_file": (None, None, os.devnull, None),
        }
    )


class ClientFactory:
    """Makes (and caches) clients for one target: local (endpoint) or AWS (credential chain)."""

    def __init__(
        self,
        region: str,
        local_endpoint: str | None = None,
        profile: str | None = None,
        endpoint_override: str | None = None,
    ):
        """local_endpoint: the local target's (guarded). endpoint_override: an AWS target pointed
        elsewhere than AWS, e.g. the local AWS standing in for it in tests."""
        self.region = region
        self.local_endpoint = local_endpoint
        self.endpoint_url = local_endpoint or endpoint_override
        if local_endpoint is not None:
            if not is_local_endpoint(local_endpoint):
                raise EndpointRefused(
                    f"the local target only talks to an endpoint on this machine, not {local_endpoint}"
                )
            self._session = boto3.Session(
                botocore_session=_isolated_session(), region_name=region, **LOCAL_CREDENTIALS
            )
        else:
            self._session = boto3.Session(region_name=region, profile_name=profile)
        self._clients: dict[str, BaseClient] = {}

    @property
    def is_local(self) -> bool:
        return self.local_endpoint is not None

    def client(self, service: str) -> BaseClient:
        if service not in self._clients:
            made = self._make(service, inject_host_prefix=True)
            # StartSyncExecution's and TestState's "sync-" host prefix resolves only on AWS's names;
            # the endpoint may come from AWS_ENDPOINT_URL(_<SERVICE>), which boto3 honours itself.
            if not is_aws_endpoint(made.meta.endpoint_url):
                made = self._make(service, inject_host_prefix=False)
            self._clients[service] = made
        return self._clients[service]

    def endpoint_of(self, service: str) -> str:
        """The endpoint a service's client really talks to (the environment's variables included)."""
        return self.client(service).meta.endpoint_url

    def _make(self, service: str, inject_host_prefix: bool) -> BaseClient:
        config = Config(
            retries={"max_attempts": 3, "mode": "standard"}, inject_host_prefix=inject_host_prefix
        )
        return self._session.client(
            service, endpoint_url=self.endpoint_url, config=config, region_name=self.region
        )


def is_aws_endpoint(url: str) -> bool:
    """Whether a URL is one of AWS's own endpoints (not a stand-in such as the local AWS)."""
    host = urlparse(url).hostname or ""
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn", ".api.aws"))
