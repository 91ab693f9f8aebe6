"""IAM roles and customer managed policies made through the API, kept across a restart.

Those a stack made come back with their stack (stack_store.py); the ones a user, an SDK or
`emulator env` made through the IAM API are written here after each change to IAM (one
snapshot per account) and made again at start, after the stacks, with the same names, ARNs
and role ids: their trust and permissions policies, the managed policies attached (AWS's,
which every account has, and the account's own), permissions boundaries, tags.

Layout: <root>/<account>.json
"""

from __future__ import annotations

import json
import logging

from harness.emulator import stack_store
from harness.emulator.state_files import FolderStore, atomic_write, inside, quarantine, read_json

log = logging.getLogger(__name__)


class IamStore(FolderStore):
    def restore(self) -> int:
        """Make every kept policy and role again; return how many roles were."""
        from moto.iam.models import iam_backends

        count = 0
        for path in sorted(self.root.glob("*.json")):
            saved = read_json(path)
            if not isinstance(saved, dict) or not {"account", "partition", "roles", "policies"} <= set(saved):
                quarantine(path, "not a whole IAM record")
                continue
            backend = iam_backends[saved["account"]][saved["partition"]]
            for policy in saved["policies"]:
                _restore_policy(backend, policy)
            for role in saved["roles"]:
                count += _restore_role(backend, role)
        return count

    def record(self, backend) -> None:
        """The account's API-made roles and policies, as they are now."""
        made_by_stacks = stack_store.made_by_stacks(backend.account_id)
        saved = {
            "account": backend.account_id,
            "partition": backend.partition,
            "policies": [_policy(p) for p in api_made_policies(backend, made_by_stacks)],
            "roles": [_role(r) for r in api_made_roles(backend, made_by_stacks)],
        }
        with self._lock:
            atomic_write(
                inside(self.root, f"{backend.account_id}.json"), json.dumps(saved, default=str).encode()
            )


def api_made_roles(backend, made_by_stacks: set[str]) -> list:
    return [role for role in backend.roles.values() if role.arn not in made_by_stacks]


def api_made_policies(backend, made_by_stacks: set[str]) -> list:
    aws_managed = {p.arn for p in backend.aws_managed_policies}
    return [
        policy
        for arn, policy in backend.managed_policies.items()
        if arn not in aws_managed and arn not in made_by_stacks
    ]


def _document(document) -> str:
    return document if isinstance(document, str) else json.dumps(document)


def _policy(policy) -> dict:
    return {
        "name": policy.name,
        "path": policy.path,
        "description": policy.description,
        "tags": [
            {"Key": k, "Value": v["Value"] if isinstance(v, dict) else v} for k, v in _tag_items(policy.tags)
        ],
        "versions": [
            {"document": _document(v.document), "default": bool(v.is_default)}
            for v in sorted(policy.versions, key=lambda v: int(v.version_id.lstrip("v").split(".")[0]))
        ],
    }


def _tag_items(tags) -> list:
    if isinstance(tags, dict):
        return list(tags.items())
    return [(tag["Key"], tag["Value"]) for tag in tags or []]


def _role(role) -> dict:
    return {
        "name": role.name,
        "id": role.id,
        "path": role.path,
        "trust": _document(role.assume_role_policy_document),
        "description": role.description,
        "max_session_duration": role.max_session_duration,
        "permissions_boundary": role.permissions_boundary_arn,
        "tags": list(role.tags or []),
        "inline": {name: _document(document) for name, document in role.policies.items()},
        "attached": list(role.managed_policies),
    }


def _restore_policy(backend, saved: dict) -> None:
    versions = saved.get("versions") or []
    if not versions:
        return
    try:
        policy = backend.create_policy(
            description=saved.get("description") or "",
            path=saved.get("path") or "/",
            policy_document=versions[0]["document"],
            policy_name=saved["name"],
            tags=saved.get("tags") or [],
        )
        for version in versions[1:]:
            backend.create_policy_version(policy.arn, version["document"], version["default"])
        if versions[0]["default"]:
            backend.set_default_policy_version(policy.arn, "v1")
    except Exception as ex:  # one that no longer validates must not stop the rest
        log.warning("IAM policy %s could not be restored: %s", saved.get("name"), ex)


def _restore_role(backend, saved: dict) -> int:
    try:
        role = backend.create_role(
            role_name=saved["name"],
            assume_role_policy_document=saved["trust"],
            path=saved.get("path") or "/",
            permissions_boundary=saved.get("permissions_boundary") or None,
            description=saved.get("description") or "",
            tags=saved.get("tags") or [],
            max_session_duration=saved.get("max_session_duration"),
        )
        if saved.get("id"):
            role.id = saved["id"]
        for name, document in (saved.get("inline") or {}).items():
            backend.put_role_policy(role.name, name, document)
        for arn in saved.get("attached") or []:
            backend.attach_role_policy(arn, role.name)
        return 1
    except Exception as ex:  # one that no longer validates must not stop the rest
        log.warning("IAM role %s could not be restored: %s", saved.get("name"), ex)
        return 0
