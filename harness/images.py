"""Build job images: tagged by a hash of their inputs, rebuilt only when those change.

An image context is a folder with a Dockerfile taking `ARG BASE_IMAGE` and a
requirements.txt. Python packages are installed from a wheelhouse built on the
host, because containers here cannot reach PyPI; the wheelhouse is rebuilt only
when requirements.txt changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JOB_IMAGE_CONTEXT = ROOT / "docker" / "job"
JOB_IMAGE_REPOSITORY = "mlharness/job"
LOCAL_AWS_IMAGE_CONTEXT = ROOT / "docker" / "local-aws"  # built by docker compose, from the root
LOCAL_BASE_IMAGE = "mlharness/base:bookworm"
PUBLIC_BASE_IMAGE = "python:3.11-slim-bookworm"
WHEELHOUSE = "wheelhouse"


class ImageBuildError(RuntimeError):
    pass


def default_base_image() -> str:
    """MLHARNESS_BASE_IMAGE, else the local base where one was built, else a public image."""
    configured = os.environ.get("MLHARNESS_BASE_IMAGE")
    if configured:
        return configured
    return LOCAL_BASE_IMAGE if image_id(LOCAL_BASE_IMAGE) else PUBLIC_BASE_IMAGE


def ensure_job_image(base_image: str | None = None, log: Callable[[str], None] = print) -> str:
    return ensure_image(JOB_IMAGE_CONTEXT, JOB_IMAGE_REPOSITORY, base_image, log)


def ensure_image(
    context: Path, repository: str, base_image: str | None = None, log: Callable[[str], None] = print
) -> str:
    """Return the tag of the image built from `context`, building it when missing."""
    base_image = base_image or default_base_image()
    base_id = image_id(base_image) or base_image  # an unpulled public image: its name stands in
    tag = f"{repository}:{inputs_digest(context, base_id)[:12]}"
    if image_id(tag):
        return tag
    log(f"building image {tag} from {context.relative_to(ROOT) if context.is_relative_to(ROOT) else context}")
    ensure_wheelhouse(context)
    result = subprocess.run(
        ["docker", "build", "-q", "--build-arg", f"BASE_IMAGE={base_image}", "-t", tag, str(context)],
        capture_output=True,
        text=True,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},  # the legacy builder: no buildx on these machines
    )
    if result.returncode != 0:
        raise ImageBuildError(f"docker build of {tag} failed: {_last_line(result.stderr)}")
    return tag


def inputs_digest(context: Path, base_image_id: str) -> str:
    """sha256 over the base image and every file of the context but the wheelhouse."""
    digest = hashlib.sha256(f"base={base_image_id}\n".encode())
    for path in sorted(p for p in context.rglob("*") if p.is_file() and WHEELHOUSE not in p.parts):
        digest.update(f"{path.relative_to(context).as_posix()}\n".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def ensure_wheelhouse(context: Path) -> Path:
    requirements = context / "requirements.txt"
    wheelhouse = context / WHEELHOUSE
    stamp = wheelhouse / f".requirements-{hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]}"
    if stamp.exists():
        return wheelhouse
    wheelhouse.mkdir(exist_ok=True)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-r",
            str(requirements),
            "-w",
            str(wheelhouse),
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise ImageBuildError(
            f"building the wheelhouse for {context.name} failed: {_last_line(result.stderr)}"
        )
    for old in wheelhouse.glob(".requirements-*"):
        old.unlink()
    stamp.touch()
    return wheelhouse


def image_id(name: str) -> str | None:
    result = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Id}}", name], capture_output=True, text=True
    )
    return result.stdout.strip() or None if result.returncode == 0 else None


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("WARNING")]
    return lines[-1] if lines else "no output"
