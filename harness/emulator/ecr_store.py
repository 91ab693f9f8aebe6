"""ECR repositories kept across a restart, beside the images the registry keeps on disk.

After each change to an account's repositories through the ECR API (created, deleted,
tagged, a policy or setting changed), their records in that region are written here (one
snapshot per account and region); at start they are made again, with the same names, ARNs,
creation times, settings, policies and tags, so the images pushed to them are found where
they were. Those a stack made come back with their stack.

Layout: <root>/<account>-<region>.json
"""

from __future__ import annotations

import datetime
import json
import logging

from harness.emulator import stack_store
from harness.emulator.state_files import FolderStore, atomic_write, inside, quarantine, read_json

log = logging.getLogger(__name__)


class EcrStore(FolderStore):
    def restore(self) -> int:
        """Make every kept repository again; return how many were."""
        from moto.ecr.models import ecr_backends

        count = 0
        for path in sorted(self.root.glob("*.json")):
            saved = read_json(path)
            if not isinstance(saved, dict) or not {"account", "region", "repositories"} <= set(saved):
                quarantine(path, "not a whole ECR record")
                continue
            backend = ecr_backends[saved["account"]][saved["region"]]
            for repository in saved["repositories"]:
                if repository["name"] in backend.repositories:
                    continue  # a stack's, made again with its stack
                made = backend.create_repository(
                    repository_name=repository["name"],
                    registry_id=repository["registry_id"],
                    encryption_config=repository["encryption"],
                    image_scan_config=repository["scanning"],
                    image_tag_mutability=repository["tag_mutability"],
                    tags=repository["tags"],
                )
                made.created_at = datetime.datetime.fromisoformat(repository["created_at"])
                made.policy = repository["policy"]
                made.lifecycle_policy = repository["lifecycle_policy"]
                count += 1
        return count

    def record(self, backend) -> None:
        """The region's API-made repositories of the account, as they are now."""
        made_by_stacks = stack_store.made_by_stacks(backend.account_id)
        saved = {
            "account": backend.account_id,
            "region": backend.region_name,
            "repositories": [
                _repository(backend, repository)
                for repository in list(backend.repositories.values())
                if repository.arn not in made_by_stacks
            ],
        }
        name = f"{backend.account_id}-{backend.region_name}.json"
        with self._lock:
            atomic_write(inside(self.root, name), json.dumps(saved, default=str).encode())


def _repository(backend, repository) -> dict:
    return {
        "name": repository.name,
        "registry_id": repository.registry_id,
        "created_at": repository.created_at.isoformat(),
        "encryption": repository.encryption_configuration,
        "scanning": repository.image_scanning_configuration,
        "tag_mutability": repository.image_tag_mutability,
        "policy": repository.policy,
        "lifecycle_policy": repository.lifecycle_policy,
        "tags": backend.tagger.list_tags_for_resource(repository.arn)["tags"],
    }
