"""State machines created through the Step Functions API, kept across a restart or a `kill -9`.

Those CloudFormation made come back with their stacks (stack_store.py); the ones a user
or an SDK created with CreateStateMachine are written here after each Create, Update or
Delete, and created again at start under the same ARN (names make ARNs). Executions are
not served again; how each ended is kept for the harness (execution_store.py).

Layout: <root>/<account>/<region>/<name>.json
"""

from __future__ import annotations

import json
import logging

from harness.emulator.state_files import FolderStore, atomic_write, inside, quarantine, read_json

log = logging.getLogger(__name__)

REQUIRED = frozenset({"account", "region", "name", "definition", "roleArn"})
FIELDS = ("name", "definition", "roleArn", "type", "loggingConfiguration", "tracingConfiguration")


class StateMachineStore(FolderStore):
    def restore(self) -> int:
        """Create every kept state machine again; return how many were."""
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        count = 0
        for path in sorted(self.root.glob("*/*/*.json")):
            saved = read_json(path)
            if not isinstance(saved, dict) or not REQUIRED <= set(saved):
                quarantine(path, "not a whole state machine record")
                continue
            backend = stepfunctions_parser_backends[saved["account"]][saved["region"]]
            try:
                backend.create_state_machine(
                    name=saved["name"],
                    definition=saved["definition"],
                    roleArn=saved["roleArn"],
                    tags=saved.get("tags") or None,
                    sm_type=saved.get("type") or "STANDARD",
                    loggingConfiguration=saved.get("loggingConfiguration"),
                    tracingConfiguration=saved.get("tracingConfiguration"),
                )
                count += 1
            except Exception as ex:  # one that no longer validates must not stop the rest
                log.warning("state machine %s could not be restored: %s", saved["name"], ex)
        return count

    def record(self, backend, machine) -> None:
        saved = {"account": backend.account_id, "region": backend.region_name}
        for field in FIELDS:
            saved[field] = getattr(machine, field, None)
        saved["tags"] = backend.get_tags_list_for_state_machine(machine.arn)
        path = self._path(backend.account_id, backend.region_name, machine.name)
        with self._lock:
            atomic_write(path, json.dumps(saved, default=str).encode())

    def has(self, account: str, region: str, name: str) -> bool:
        return self._path(account, region, name).exists()

    def drop(self, account: str, region: str, name: str) -> None:
        with self._lock:
            self._path(account, region, name).unlink(missing_ok=True)

    def _path(self, account: str, region: str, name: str):
        return inside(self.root, account, region, f"{name}.json")
