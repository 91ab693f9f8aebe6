"""Deployed stacks that survive a restart or a `kill -9` of the emulator.

moto keeps stacks in memory. Whenever a stack change completes (a change set
executed, a stack created, updated or deleted through the API: the hooks are in
harness/emulator/patches/persistence.py), the stack's
template and parameters are written to <root>/<account>/<region>/<name>.json, or
the file removed; at start each stack is created again from them, with its
resources. State machines keep their ARNs (the templates name them), and the names
CloudFormation generated are generated again alike (the stack's name seed is kept:
patches/cloudformation/names.py); execution histories are not kept. Nested stacks
are not recorded: their parent creates them again.
"""

from __future__ import annotations

import json
import logging

from harness.emulator.patches.cloudformation import names
from harness.emulator.state_files import FolderStore, atomic_write, inside, quarantine, read_json

log = logging.getLogger(__name__)

KEPT_STATUSES = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE")


class StackStore(FolderStore):
    def restore(self) -> int:
        """Create every persisted stack again; return how many were."""
        from moto.cloudformation.models import cloudformation_backends

        count = 0
        for path in sorted(self.root.glob("*/*/*.json")):
            saved = read_json(path)
            if not isinstance(saved, dict) or not {
                "account",
                "region",
                "name",
                "template",
                "parameters",
            } <= set(saved):
                quarantine(path, "not a whole stack record")
                continue
            backend = cloudformation_backends[saved["account"]][saved["region"]]
            try:
                with names.restoring(saved.get("seed")):
                    backend.create_stack(saved["name"], saved["template"], saved["parameters"])
                count += 1
            except Exception as ex:  # one stack that no longer deploys must not stop the rest
                log.warning("stack %s could not be restored: %s", saved["name"], ex)
        return count

    def record(self, backend, stack_name: str | None) -> None:
        if not stack_name:
            return
        live = [s for s in backend.stacks.values() if s.name == stack_name]
        if live and getattr(live[0], "parent_id", None):
            return  # a nested stack is made again by its parent
        path = inside(self.root, backend.account_id, backend.region_name, f"{stack_name}.json")
        with self._lock:
            if live and live[0].status in KEPT_STATUSES:
                stack = live[0]
                saved = {
                    "account": backend.account_id,
                    "region": backend.region_name,
                    "name": stack.name,
                    "template": stack.template,
                    "parameters": dict(stack.parameters or {}),
                    "seed": names.seed_of(backend.account_id, backend.region_name, stack.name),
                }
                atomic_write(path, json.dumps(saved).encode())
            elif not live or live[0].status in ("ROLLBACK_COMPLETE", "DELETE_COMPLETE"):
                path.unlink(missing_ok=True)


def made_by_stacks(account: str) -> set[str]:
    """The ARNs of what the account's live stacks made (roles, policies, repositories, ...)."""
    from moto.cloudformation.models import cloudformation_backends

    arns = set()
    for backend in list(cloudformation_backends.get(account, {}).values()):
        for stack in list(backend.stacks.values()):
            for resource in list(stack.resource_map._parsed_resources.values()):
                arn = getattr(resource, "arn", None)
                if isinstance(arn, str):
                    arns.add(arn)
    return arns
