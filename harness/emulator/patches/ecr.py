"""Patches to moto's ECR: repositories live in a real registry on this machine.

moto hands out `<account>.dkr.ecr.<region>.amazonaws.com/<name>` URIs and tokens
for that host, so a `docker push` would try to reach AWS, and it keeps images in
memory, so what was pushed was invisible to DescribeImages. With a local registry
running (harness/emulator/registry.py):
- URIs and the token's proxy endpoint name the registry, and the token carries the
  only credentials the registry takes: login, push and pull by digest work, nothing
  leaves the machine, and a push without login is refused as on ECR;
- DescribeImages, ListImages, BatchGetImage and BatchDeleteImage answer from (and
  change) what the registry holds; PutImage writes the manifest there.
"""

from __future__ import annotations

from base64 import b64encode
from datetime import UTC, datetime, timedelta


def point_repositories_at(registry) -> None:
    """registry: a started LocalRegistry."""
    from moto.core.responses import ActionResult
    from moto.ecr.models import Repository
    from moto.ecr.responses import ECRResponse

    from harness.emulator.registry import USERNAME

    original_init = Repository.__init__

    def __init__(repository, *args, **kwargs):
        original_init(repository, *args, **kwargs)
        repository.uri = f"{registry.address}/{repository.name}"

    def get_authorization_token(response) -> ActionResult:
        registry_ids = response._get_param("registryIds") or [response.current_account]
        token = b64encode(f"{USERNAME}:{registry.password}".encode()).decode()
        expires = datetime.now(UTC) + timedelta(hours=12)
        data = [
            {"authorizationToken": token, "expiresAt": expires, "proxyEndpoint": f"http://{registry.address}"}
            for _ in registry_ids
        ]
        return ActionResult({"authorizationData": data})

    __init__.__wrapped__ = original_init
    Repository.__init__ = __init__
    get_authorization_token.__wrapped__ = ECRResponse.get_authorization_token
    ECRResponse.get_authorization_token = get_authorization_token


def serve_images_from(client) -> None:
    """ECR's image operations read and change what the registry holds (client: a RegistryClient)."""
    from moto.ecr.models import ECRBackend

    def reading(method_name: str):
        original = getattr(ECRBackend, method_name)

        def method(backend, repository_name, *args, **kwargs):
            _mirror(backend, client, repository_name)
            return original(backend, repository_name, *args, **kwargs)

        method.__wrapped__ = original
        setattr(ECRBackend, method_name, method)

    for name in ("describe_images", "list_images", "batch_get_image"):
        reading(name)

    original_delete = ECRBackend.batch_delete_image

    def batch_delete_image(backend, repository_name, *args, **kwargs):
        _mirror(backend, client, repository_name)
        answer = original_delete(backend, repository_name, *args, **kwargs)
        _apply_deletions(backend, client, repository_name)
        return answer

    original_put = ECRBackend.put_image

    def put_image(backend, repository_name, image_manifest, image_tag, *args, **kwargs):
        _mirror(backend, client, repository_name)
        image = original_put(backend, repository_name, image_manifest, image_tag, *args, **kwargs)
        reference = image_tag or image.image_digest
        client.put_manifest(repository_name, reference, image_manifest, image.image_manifest_media_type)
        return image

    for name, method, original in (
        ("batch_delete_image", batch_delete_image, original_delete),
        ("put_image", put_image, original_put),
    ):
        method.__wrapped__ = original
        setattr(ECRBackend, name, method)


def _mirror(backend, client, repository_name: str) -> None:
    """Make moto's images of the repository exactly what the registry holds."""
    from moto.ecr.models import Image

    repository = backend.repositories.get(repository_name)
    if repository is None:
        return  # moto answers RepositoryNotFoundException
    by_digest: dict[str, Image] = {}
    for tag in client.tags(repository_name):
        manifest, media_type, digest = client.manifest(repository_name, tag)
        image = by_digest.get(digest)
        if image is None:
            image = Image(backend.account_id, tag, manifest, repository_name, media_type, digest)
            pushed = client.pushed_at(repository_name, digest)
            if pushed is not None:
                image.image_pushed_at = int(pushed.timestamp())
            by_digest[digest] = image
        elif tag not in image.image_tags:
            image.image_tags.append(tag)
    repository.images = list(by_digest.values())


def _apply_deletions(backend, client, repository_name: str) -> None:
    """What BatchDeleteImage removed from moto's images, removed from the registry too."""
    images = backend.repositories[repository_name].images
    kept = {image.image_digest: set(image.image_tags) for image in images}
    deleted: set[str] = set()
    for tag in client.tags(repository_name):
        _, _, digest = client.manifest(repository_name, tag)
        if digest not in kept and digest not in deleted:
            client.delete_manifest(repository_name, digest)
            deleted.add(digest)
        elif digest in kept and tag not in kept[digest]:
            client.untag(repository_name, tag)


def keep_registry_scanning_rules_a_list() -> None:
    """PutRegistryScanningConfiguration without `rules` (optional: AWS keeps no rules) stored
    None, failed, and left every later CreateRepository failing on it (moto iterates the rules
    of the registry's configuration): no rules are an empty list."""
    from moto.ecr.models import ECRBackend

    original = ECRBackend.put_registry_scanning_configuration

    def put_registry_scanning_configuration(backend, scan_type, rules):
        return original(backend, scan_type, rules or [])

    ECRBackend.put_registry_scanning_configuration = put_registry_scanning_configuration
