"""A project: a folder with `mlharness.yaml`, where a team keeps its pipelines, images and data.

The harness finds it by walking up from the working directory (or is given it:
`--project DIR`, MLHARNESS_PROJECT). The file declares the project's name, its
pipelines (modules or files, relative to the project), its images (build contexts in
the project, or image URIs), settings shared by every environment, and its
environments (local, dev, stage, prod, ...), each of which may override them.
Everything the harness writes for a project (build output, run records, generated
inputs) lives under `<project>/.mlharness/` (MLHARNESS_HOME moves it).

This module reads and checks the file's shape; `harness.config` turns one
environment of it into a validated configuration.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

PROJECT_FILE = "mlharness.yaml"
PROJECT_ENV = "MLHARNESS_PROJECT"
NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
IMAGE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$|^[a-z]$")
ENVIRONMENT_NAME = re.compile(r"^[a-z][a-z0-9-]{0,20}$")
MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
BUILTIN_JOB_IMAGE = "job"  # the harness's own job image, unless the project names another `job`

# Sections an environment may set, and the project may set for all of them at the top.
SHARED_SECTIONS = ("region", "inputs", "settings", "instances", "cache", "emulator", "aws", "schedules")
ENVIRONMENT_ONLY = ("target", "account", "stack_name", "artifact_bucket")
TOP_ONLY = ("project", "pipelines", "images", "environments")
# Keys of earlier configurations, and where what they held lives now.
MOVED = {
    "pipeline_modules": "the top-level pipelines list of mlharness.yaml",
    "data": "inputs.<name> (a path, or {generate: {...}}), or --input NAME=PATH",
    "pipeline": "settings.<pipeline>",
    "schedule": "schedules.<pipeline>.expression",
}


class ProjectError(ValueError):
    """A project that cannot be read; the message is one line naming the file and the key."""


class ProjectNotFound(ProjectError):
    """No mlharness.yaml where one was looked for."""


@dataclasses.dataclass(frozen=True)
class Image:
    """An image the project's steps run: built from a folder of the project, or an existing URI."""

    name: str
    context: Path | None = None
    uri: str | None = None


@dataclasses.dataclass(frozen=True)
class Project:
    root: Path
    file: Path
    name: str
    pipeline_modules: tuple[str, ...]  # import names, the project's root first on the path
    images: Mapping[str, Image]
    shared: Mapping[str, Any]  # what every environment starts from
    environments: Mapping[str, Mapping[str, Any]]  # each environment's own settings, as written

    @property
    def home(self) -> Path:
        """Where the harness keeps what it writes for this project."""
        configured = os.environ.get("MLHARNESS_HOME")
        return Path(configured) if configured else self.root / ".mlharness"

    @property
    def build_dir(self) -> Path:
        return self.home / "build"

    def records_dir(self, env: str) -> Path:
        return self.home / "runs" / env

    @property
    def inputs_dir(self) -> Path:
        """Generated example inputs."""
        return self.home / "inputs"

    def relative(self, path: Path) -> str:
        """A path as the user would write it: relative to the project where it is inside."""
        path = Path(path)
        return str(path.relative_to(self.root)) if path.is_relative_to(self.root) else str(path)


def find(start: Path | None = None) -> Path:
    """The folder holding mlharness.yaml: `start` (default: the working directory) or the
    nearest folder above it."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PROJECT_FILE).is_file():
            return folder
    raise ProjectNotFound(
        f"no {PROJECT_FILE} in {here} or any folder above it: run inside a project, give --project DIR, "
        "or make one with `mlharness init`"
    )


def load(directory: Path | str | None = None) -> Project:
    """The project in `directory` (which must hold mlharness.yaml), else MLHARNESS_PROJECT's,
    else the one found from the working directory."""
    given = directory or os.environ.get(PROJECT_ENV)
    if given:
        root = Path(given).expanduser().resolve()
        if not (root / PROJECT_FILE).is_file():
            what = "is not a folder" if not root.is_dir() else f"has no {PROJECT_FILE}"
            raise ProjectError(f"project {given}: {root} {what} (`mlharness init {given}` makes one)")
    else:
        root = find()
    return parse(root / PROJECT_FILE)


def read_yaml(path: Path) -> Any:
    """A YAML file's content; one line naming the file for what cannot be read."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as ex:
        raise ProjectError(f"{path}: cannot be read: {ex.strerror}") from None
    except UnicodeDecodeError as ex:
        raise ProjectError(
            f"{path}: not UTF-8 (byte 0x{ex.object[ex.start]:02x} at offset {ex.start})"
        ) from None
    except yaml.YAMLError as ex:
        mark = getattr(ex, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ProjectError(f"{path}: not valid YAML{where}: {getattr(ex, 'problem', ex)}") from None


def parse(path: Path) -> Project:
    raw = read_yaml(path)
    root = path.parent

    def fail(key: str, expected: str) -> ProjectError:
        return ProjectError(f"{path}: {key}: expected {expected}")

    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ProjectError(f"{path}: expected a mapping of settings at the top level")
    _refuse_unknown(raw, (*TOP_ONLY, *SHARED_SECTIONS), "", path)
    name = raw.get("project")
    if not isinstance(name, str) or not NAME.match(name):
        raise fail("project", "the project's name: 2-32 lower-case letters, digits and '-'")
    entries = raw.get("pipelines")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, str) and e for e in entries):
        raise fail("pipelines", "a list of the project's pipelines: modules or .py files relative to it")
    modules = tuple(_module_of(root, entry, index, fail) for index, entry in enumerate(entries))
    images = _images(raw.get("images"), root, fail)
    environments = raw.get("environments") or {}
    if not isinstance(environments, dict):
        raise fail("environments", "a mapping of environment name to its settings")
    for env, settings in environments.items():
        if not isinstance(env, str) or not ENVIRONMENT_NAME.match(env):
            raise fail(f"environments.{env}", "an environment name: lower-case letters, digits and '-'")
        if settings is None:
            environments[env] = {}
        elif not isinstance(settings, dict):
            raise fail(f"environments.{env}", "a mapping of settings")
        else:
            _refuse_unknown(settings, (*ENVIRONMENT_ONLY, *SHARED_SECTIONS), f"environments.{env}.", path)
    shared = {key: raw[key] for key in SHARED_SECTIONS if key in raw}
    return Project(
        root=root,
        file=path,
        name=name,
        pipeline_modules=modules,
        images=images,
        shared=shared,
        environments=environments,
    )


def _refuse_unknown(raw: dict, known: tuple[str, ...], at: str, path: Path) -> None:
    for key in raw:
        if key in known:
            continue
        if key in MOVED:
            raise ProjectError(f"{path}: {at}{key}: moved to {MOVED[key]}")
        if key in TOP_ONLY:
            raise ProjectError(f"{path}: {at}{key}: is set once, at the top of the file")
        if key in ENVIRONMENT_ONLY:
            raise ProjectError(f"{path}: {key}: is set per environment (environments.<env>.{key})")
        raise ProjectError(f"{path}: {at}{key}: unknown setting (known: {', '.join(known)})")


def _module_of(root: Path, entry: str, index: int, fail) -> str:
    """A pipelines entry as an import name: a module name as it is, a .py file (relative to the
    project) as the dotted path of it."""
    where = f"pipelines[{index}]"
    if not entry.endswith(".py"):
        if not MODULE_NAME.match(entry):
            raise fail(where, f"a module name or a .py file relative to the project, got {entry!r}")
        return entry
    relative = Path(entry)
    if relative.is_absolute() or ".." in relative.parts:
        raise fail(where, f"a .py file inside the project, got {entry!r}")
    if not (root / relative).is_file():
        raise fail(where, f"a .py file of the project, but {entry} does not exist")
    dotted = ".".join(relative.with_suffix("").parts)
    if not MODULE_NAME.match(dotted):
        raise fail(where, f"a file whose path is an import name (letters, digits, '_'), got {entry!r}")
    return dotted


def _images(raw: Any, root: Path, fail) -> dict[str, Image]:
    raw = raw or {}
    if not isinstance(raw, dict):
        raise fail("images", "a mapping of image name to a build context folder or {uri: ...}")
    images: dict[str, Image] = {}
    for name, spec in raw.items():
        where = f"images.{name}"
        if not isinstance(name, str) or not IMAGE_NAME.match(name):
            raise fail(where, "an image name: 1-32 lower-case letters, digits and '-'")
        if isinstance(spec, str):
            spec = {"context": spec}
        if not isinstance(spec, dict) or len(spec) != 1 or not ({"context", "uri"} & set(spec)):
            raise fail(where, "a folder of the project (context: PATH) or an existing image (uri: URI)")
        if "uri" in spec:
            if not isinstance(spec["uri"], str) or not spec["uri"] or any(c.isspace() for c in spec["uri"]):
                raise fail(
                    f"{where}.uri", "an image URI such as 123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"
                )
            images[name] = Image(name, uri=spec["uri"])
            continue
        context = root / str(spec["context"])
        if not (context / "Dockerfile").is_file():
            raise fail(
                f"{where}.context", f"a folder of the project with a Dockerfile; {spec['context']} has none"
            )
        images[name] = Image(name, context=context.resolve())
    return images


def deep_merge(base: Mapping, over: Mapping) -> dict:
    """`over` on `base`: mappings merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
