"""Loaded at start-up by every Python of a shell prepared by `mlharness emulator env` (the
folder is first on its PYTHONPATH): SDKs that call AWS at an address of their own choosing
(the SageMaker SDK asks STS at `https://sts.<region>.amazonaws.com` for the account and the
execution role, whatever AWS_ENDPOINT_URL says) reach the local AWS instead.

A client made with an explicit `endpoint_url` on an AWS host is given the local AWS's address,
only while the process is still pointed at the local AWS this shell was prepared for
(AWS_ENDPOINT_URL equal to MLHARNESS_LOCAL_AWS): anywhere else it changes nothing. It imports
nothing until botocore is imported, then chains to any other sitecustomize on the path.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from urllib.parse import urlsplit

_AWS_HOST_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")
_PATCHED_MODULE = "botocore.session"


def local_endpoint() -> str | None:
    """The local AWS's address when this process is pointed at it, else None."""
    local = os.environ.get("MLHARNESS_LOCAL_AWS")
    if local and os.environ.get("AWS_ENDPOINT_URL") == local:
        return local
    return None


def redirected(endpoint_url: str | None) -> str | None:
    local = local_endpoint()
    if local is None or not endpoint_url:
        return endpoint_url
    host = urlsplit(endpoint_url).hostname or ""
    return local if host.endswith(_AWS_HOST_SUFFIXES) else endpoint_url


def _patch(session_module) -> None:
    upstream = session_module.Session.create_client

    def create_client(self, *args, **kwargs):
        if "endpoint_url" in kwargs:
            kwargs["endpoint_url"] = redirected(kwargs["endpoint_url"])
        elif len(args) >= 6:  # service, region, api_version, use_ssl, verify, endpoint_url
            args = (*args[:5], redirected(args[5]), *args[6:])
        return upstream(self, *args, **kwargs)

    create_client.__wrapped__ = upstream
    session_module.Session.create_client = create_client


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches botocore.session right after it is first imported."""

    def find_spec(self, name, path, target=None):
        if name != _PATCHED_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            _patch(module)

        spec.loader.exec_module = exec_module
        return spec


def _chain_to_the_next_sitecustomize() -> None:
    """Python imports one sitecustomize: run the one this folder hides, if there is one."""
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


if os.environ.get("MLHARNESS_LOCAL_AWS"):
    if _PATCHED_MODULE in sys.modules:
        _patch(sys.modules[_PATCHED_MODULE])
    else:
        sys.meta_path.insert(0, _PatchOnImport())
_chain_to_the_next_sitecustomize()
