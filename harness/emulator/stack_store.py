"""Deployed stacks that survive a restart or a `kill -9` of the emulator.

moto keeps stacks in memory. Whenever a stack change completes (a change set
executed, a stack created, updated or deleted through the API), the stack's
template and parameters are written to <root>/<account>/<region>/<name>.json, or
the file removed; at start each stack is created again from them, with its
resources. State machines keep their ARNs (the templates name them); other
physical names (roles, rules) are new; execution histories are not kept.
"""

from __future__ import annotations

import json
import logging

from harness.emulator.state_files import FolderStore, atomic_write, quarantine, read_json

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
                backend.create_stack(saved["name"], saved["template"], saved["parameters"])
                count += 1
            except Exception as ex:  # one stack that no longer deploys must not stop the rest
                log.warning("stack %s could not be restored: %s", saved["name"], ex)
        return count

    def attach(self) -> None:
        """Record every completed stack change from now on."""
        from moto.cloudformation.models import CloudFormationBackend

        store = self

        def recording(method_name: str, stack_name_of):
            original = getattr(CloudFormationBackend, method_name)

            def method(backend, *args, **kwargs):
                result = original(backend, *args, **kwargs)
                store.record(backend, stack_name_of(backend, args, kwargs, result))
                return result

            method.__wrapped__ = original
            setattr(CloudFormationBackend, method_name, method)

        recording("create_stack", lambda backend, args, kwargs, result: result.name)
        recording("update_stack", lambda backend, args, kwargs, result: result.name)
        recording("execute_change_set", _change_set_stack)
        recording("delete_stack", _deleted_stack)

    def record(self, backend, stack_name: str | None) -> None:
        if not stack_name:
            return
        live = [s for s in backend.stacks.values() if s.name == stack_name]
        path = self.root / backend.account_id / backend.region_name / f"{stack_name}.json"
        with self._lock:
            if live and live[0].status in KEPT_STATUSES:
                stack = live[0]
                saved = {
                    "account": backend.account_id,
                    "region": backend.region_name,
                    "name": stack.name,
                    "template": stack.template,
                    "parameters": dict(stack.parameters or {}),
                }
                atomic_write(path, json.dumps(saved).encode())
            elif not live or live[0].status in ("ROLLBACK_COMPLETE", "DELETE_COMPLETE"):
                path.unlink(missing_ok=True)


def _change_set_stack(backend, args, kwargs, result) -> str | None:
    """ExecuteChangeSet names the stack (a name or an id) or only the change set (a name or an ARN)."""
    stack = kwargs.get("stack_name")
    if stack:
        return backend.stacks[stack].name if stack in backend.stacks else stack
    return backend.describe_change_set(kwargs.get("change_set_name", args[0] if args else None)).stack.name


def _deleted_stack(backend, args, kwargs, result) -> str | None:
    """DeleteStack takes a name or a stack id; the stack has gone by the time we look."""
    given = kwargs.get("name_or_stack_id", args[0] if args else None)
    deleted = backend.deleted_stacks.get(given)
    return deleted.name if deleted is not None else given
