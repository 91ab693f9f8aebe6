"""Push an image to ECR and name it by digest (what the stack is given): the account's ECR on
AWS, the local AWS's (a registry on this machine) locally."""

from __future__ import annotations

import base64
from collections.abc import Callable

from botocore.exceptions import ClientError

from harness.errors import HarnessError


def push(ecr, image_tag: str, repository: str, log: Callable[[str], None] = print) -> str:
    """Create the repository when missing, log in with an authorization token, push,
    and return `<repository uri>@<digest>`. An image whose tag (a hash of what it is built
    from) the repository holds already is not pushed again."""
    import docker

    tag = image_tag.rsplit(":", 1)[1]
    try:
        uri = ecr.describe_repositories(repositoryNames=[repository])["repositories"][0]["repositoryUri"]
    except ClientError as ex:
        if ex.response["Error"]["Code"] != "RepositoryNotFoundException":
            raise
        uri = _create_repository(ecr, repository, log)
    else:
        pushed = _pushed_digest(ecr, repository, tag)
        if pushed:
            log(f"image {image_tag} is in ECR already: {uri}@{pushed}")
            return f"{uri}@{pushed}"
    token = ecr.get_authorization_token()["authorizationData"][0]
    username, password = base64.b64decode(token["authorizationToken"]).decode().split(":", 1)
    client = docker.from_env()
    client.login(username=username, password=password, registry=token["proxyEndpoint"])
    client.images.get(image_tag).tag(uri, tag=tag)
    digest = None
    for event in client.images.push(
        uri, tag=tag, stream=True, decode=True, auth_config={"username": username, "password": password}
    ):
        if "error" in event:
            raise HarnessError(f"pushing {uri}:{tag} failed: {event['error']}")
        digest = (event.get("aux") or {}).get("Digest", digest)
    if not digest:
        raise HarnessError(f"pushing {uri}:{tag} reported no digest")
    log(f"pushed {uri}:{tag} ({digest})")
    _untag(client, f"{uri}:{tag}")
    return f"{uri}@{digest}"


def _untag(client, name: str) -> None:
    """The registry's name was only for the push: the image keeps its own tag, and a job that
    runs it pulls it by digest, as SageMaker does."""
    import docker.errors

    try:
        client.images.remove(name, noprune=True)
    except docker.errors.APIError:
        pass  # a name another push of the same image made meanwhile, removed by it


def _create_repository(ecr, repository: str, log: Callable[[str], None]) -> str:
    """The repository's URI, creating it; one another command created meanwhile is used."""
    try:
        created = ecr.create_repository(
            repositoryName=repository, imageScanningConfiguration={"scanOnPush": True}
        )
    except ClientError as ex:
        if ex.response["Error"]["Code"] != "RepositoryAlreadyExistsException":
            raise
        return ecr.describe_repositories(repositoryNames=[repository])["repositories"][0]["repositoryUri"]
    log(f"created ECR repository {repository}")
    return created["repository"]["repositoryUri"]


def _pushed_digest(ecr, repository: str, tag: str) -> str | None:
    try:
        details = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])["imageDetails"]
    except ClientError as ex:
        if ex.response["Error"]["Code"] in ("ImageNotFoundException", "RepositoryNotFoundException"):
            return None
        raise
    return details[0]["imageDigest"] if details else None
