"""The step cache: a processing, training or transform job whose request, image and inputs
match an earlier completed job's is served from that job's outputs, and a miss says why.

The key is the job's request normalised (its name, tags and output locations left out;
keys sorted; lists item by item), the image by its ID, the instance type and count, and a
manifest of every S3 input: the sha256 of each object's content (a gzip file's, unpacked:
its header's timestamp is not content), by its path in the channel. An S3 URI given in a
hyperparameter, argument or variable counts by what it holds, so a run-unique code location
(the SDK's s3://bucket/<job>/source/) keys by the code; one that holds nothing yet is a
location the job may write to itself, and what it wrote there is recorded and written
again to the new request's location on a hit.

A hit writes the recorded outputs where the new job's request says, and the job goes
InProgress then Completed as any other. A miss names what differs from the nearest earlier
run of the same step (same kind and program): `hyperparameters.C: 1.0 -> 0.5`, `input
train: 3 objects changed`. Failed and stopped jobs are never recorded; jobs that keep
checkpoints are never cached (their outcome depends on what is in the checkpoints).

Layout: <root>/entries/<key>.json, <root>/blobs/<sha256> (outputs, content-addressed).
Entries are used least-recently-first evicted beyond `max_bytes` of blobs, expire after
`expire_after` seconds when that is set, and are misses when an output blob is gone or no
longer hashes to its name.
"""

from __future__ import annotations

import collections
import dataclasses
import fcntl
import gzip
import hashlib
import io
import json
import os
import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.emulator.sagemaker import python_imports
from harness.emulator.state_files import atomic_write, quarantine
from mlharness.kinds import PROCESSING, TRAINING, TRANSFORM

DEFAULT_MAX_BYTES = 10 * 2**30
UNFINISHED_KEPT = 500  # keys of failed or stopped jobs kept to explain misses
# Hyperparameters that carry the job's own name (the SDK and tuning jobs set them): not part of the key.
NAMED_HYPERPARAMETERS = ("sagemaker_job_name",)


@dataclasses.dataclass(frozen=True)
class Key:
    kind: str
    step: str  # what makes two jobs runs of the same step: their kind and program
    fields: dict[str, Any]  # flat: "hyperparameters.C" -> "1.0", "input train" -> {path: sha256}
    # Fields naming an S3 location that holds nothing yet (where the job may write itself):
    # field -> its URI in this request. Not part of the digest: a hit writes there again.
    locations: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.fields, sort_keys=True).encode()).hexdigest()


def key_of(spec, s3_data, image_id: str) -> Key | None:
    """The key of a job (a runner.JobSpec), or None when it is not cacheable. `data` is the
    channels.S3Data that reads its inputs."""
    request = spec.request
    data = _Inputs(s3_data)
    fields: dict[str, Any] = {"kind": spec.kind.resource, "image": image_id}
    if spec.kind is TRAINING:
        if request.get("CheckpointConfig"):
            return None
        algorithm = dict(request.get("AlgorithmSpecification") or {})
        algorithm.pop("TrainingImage", None)
        _flatten(fields, "algorithm", algorithm)
        hyperparameters = {
            name: value
            for name, value in (request.get("HyperParameters") or {}).items()
            if name not in NAMED_HYPERPARAMETERS and value != spec.name and value != json.dumps(spec.name)
        }
        _flatten(fields, "hyperparameters", hyperparameters)
        resources = request.get("ResourceConfig") or {}
        fields["instances"] = f"{resources.get('InstanceCount', 1)} x {resources.get('InstanceType')}"
        for channel in request.get("InputDataConfig") or []:
            source = channel["DataSource"]["S3DataSource"]
            settings = {k: v for k, v in channel.items() if k not in ("ChannelName", "DataSource")}
            settings |= {k: v for k, v in source.items() if k != "S3Uri"}
            _flatten(fields, f"channel {channel['ChannelName']}", settings)
            fields[f"input {channel['ChannelName']}"] = data.manifest(source)
        fields["network isolation"] = bool(request.get("EnableNetworkIsolation"))
        program = hyperparameters.get("sagemaker_program") or json.dumps(algorithm.get("ContainerEntrypoint"))
    elif spec.kind is PROCESSING:
        app = dict(request["AppSpecification"])
        app.pop("ImageUri", None)
        _flatten(fields, "app", app)
        cluster = request["ProcessingResources"]["ClusterConfig"]
        fields["instances"] = f"{cluster.get('InstanceCount', 1)} x {cluster.get('InstanceType')}"
        for item in request.get("ProcessingInputs") or []:
            source = item["S3Input"]
            _flatten(
                fields,
                f"input {item['InputName']} settings",
                {k: v for k, v in source.items() if k != "S3Uri"},
            )
            fields[f"input {item['InputName']}"] = data.manifest(source)
        for item in (request.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
            fields[f"output {item['OutputName']}"] = item["S3Output"]["LocalPath"]
        fields["network isolation"] = bool((request.get("NetworkConfig") or {}).get("EnableNetworkIsolation"))
        program = json.dumps([app.get("ContainerEntrypoint"), (app.get("ContainerArguments") or [None])[0]])
    elif spec.kind is TRANSFORM:
        container = dict(spec.model_container or {})
        model_data = container.pop("ModelDataUrl", "")
        container.pop("Image", None)
        _flatten(fields, "model", container)
        fields["model data"] = data.manifest({"S3Uri": model_data}) if model_data else {}
        transform_input = dict(request["TransformInput"])
        source = transform_input.pop("DataSource")["S3DataSource"]
        _flatten(
            fields, "input settings", transform_input | {k: v for k, v in source.items() if k != "S3Uri"}
        )
        fields["input"] = data.manifest(source)
        output = {
            k: v for k, v in request["TransformOutput"].items() if k not in ("S3OutputPath", "KmsKeyId")
        }
        _flatten(fields, "output", output)
        for name in ("BatchStrategy", "MaxPayloadInMB", "MaxConcurrentTransforms"):
            if request.get(name) is not None:
                fields[name] = request[name]
        resources = request.get("TransformResources") or {}
        fields["instances"] = f"{resources.get('InstanceCount', 1)} x {resources.get('InstanceType')}"
        program = json.dumps(container.get("Environment", {}).get("SAGEMAKER_PROGRAM"))
    else:
        return None
    _flatten(fields, "environment", request.get("Environment") or {})
    locations = _content_of_s3_values(fields, data)
    data.keep_only_what_programs_load(fields)
    return Key(spec.kind.resource, f"{spec.kind.resource} {program}", fields, locations)


def _content_of_s3_values(fields: dict[str, Any], data) -> dict[str, str]:
    """An S3 URI in a hyperparameter, argument or variable is keyed by what it holds (so the
    SDK's per-job code location, or a run's own prefix, keys by content); one holding nothing
    yet is a location the job may write to. Returns those locations."""
    from harness.emulator.sagemaker.channels import DataError

    locations = {}
    for name, value in list(fields.items()):
        uri = value.strip('"') if isinstance(value, str) else ""
        if not uri.startswith("s3://") or name.startswith("input"):
            continue
        try:
            fields[name] = data.manifest({"S3Uri": uri})
        except DataError:
            fields[name] = "(an S3 location)"
            locations[name] = uri
    return locations


def why_uncacheable(spec) -> str:
    if spec.kind is TRAINING and spec.request.get("CheckpointConfig"):
        return "it keeps checkpoints (its outcome depends on what they hold)"
    return f"{spec.kind.title}s are not cached"


def _flatten(into: dict, prefix: str, value: Any) -> None:
    if isinstance(value, dict) and value:
        for name, item in sorted(value.items()):
            _flatten(into, f"{prefix}.{name}", item)
    elif isinstance(value, list) and value and any(isinstance(item, str) for item in value):
        into[f"{prefix}.length"] = len(value)
        for index, item in enumerate(value):
            _flatten(into, f"{prefix}[{index}]", item)
    elif value not in (None, {}, []):
        into[prefix] = value


class _Inputs:
    """Manifests of S3 inputs: path in the channel -> sha256 of the object's content; an
    archive of Python code by its members (a lone archive: `jobs/a.py`; among other objects:
    `code.tar.gz!jobs/a.py`), later cut to what the job's programs can load."""

    def __init__(self, data):
        self.data = data
        self._archives: list[tuple[dict[str, str], str, dict[str, bytes]]] = []

    def manifest(self, source: dict) -> dict[str, str]:
        found = self.data.objects(source["S3Uri"], source.get("S3DataType", "S3Prefix"))
        manifest = {}
        for item in found:
            known = _DIGESTS.get(item.etag)
            if known is not None:  # the same bytes, digested before (an output the cache copied)
                manifest[item.relative] = known
                continue
            body = self.data.read(item)
            members = python_imports.archive_members(body)
            if members is None:
                manifest[item.relative] = _DIGESTS.put(item.etag, content_digest(body))
                continue
            prefix = "" if len(found) == 1 else f"{item.relative}!"
            manifest |= {
                prefix + name: hashlib.sha256(member).hexdigest() for name, member in members.items()
            }
            self._archives.append((manifest, prefix, members))
        return manifest

    def keep_only_what_programs_load(self, fields: dict[str, Any]) -> None:
        """The programs are the .py paths the request names (an entry point, an argument,
        sagemaker_program, SAGEMAKER_PROGRAM)."""
        programs = [
            value.strip('"')
            for value in fields.values()
            if isinstance(value, str) and value.strip('"').endswith(".py")
        ]
        for manifest, prefix, members in self._archives:
            loadable = python_imports.loadable(members, programs)
            if loadable is not None:
                for name in set(members) - loadable:
                    manifest.pop(prefix + name, None)


class _DigestsByETag:
    """The content digest of objects already read, by their ETag: an object listed with a known
    ETag is not downloaded again to key a job. An ETag is derived from the content (its MD5, or
    MD5s of its parts), so equal ETags are equal bytes. Bounded: least recently used go."""

    LIMIT = 20_000

    def __init__(self) -> None:
        self._digests: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, etag: str | None) -> str | None:
        if not etag:
            return None
        with self._lock:
            digest = self._digests.get(etag)
            if digest is not None:
                self._digests.move_to_end(etag)
            return digest

    def put(self, etag: str | None, digest: str) -> str:
        if etag:
            with self._lock:
                self._digests[etag] = digest
                self._digests.move_to_end(etag)
                while len(self._digests) > self.LIMIT:
                    self._digests.popitem(last=False)
        return digest


_DIGESTS = _DigestsByETag()


def content_digest(body: bytes) -> str:
    """sha256 of the bytes; of a gzip file, of what it holds: its header's timestamp is not
    content (the SDK packs a job's code anew, with a new timestamp, for every job)."""
    if body[:2] == b"\x1f\x8b":
        digest = hashlib.sha256()
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(body)) as unpacked:
                while chunk := unpacked.read(1 << 20):
                    digest.update(chunk)
            return "gunzipped:" + digest.hexdigest()
        except (OSError, EOFError):  # not gzip after all
            pass
    return hashlib.sha256(body).hexdigest()


class StepCache:
    def __init__(self, root: Path, max_bytes: int = DEFAULT_MAX_BYTES, expire_after: float | None = None):
        self.root = Path(root)
        self.entries_dir = self.root / "entries"
        self.blobs = self.root / "blobs"
        # Keys of jobs that failed or were stopped: never served, but a later miss names them
        # (the run a user just fixed is the one its next run differs from).
        self.unfinished_dir = self.root / "unfinished"
        self.entries_dir.mkdir(parents=True, exist_ok=True)
        self.unfinished_dir.mkdir(parents=True, exist_ok=True)
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.expire_after = expire_after

    @contextmanager
    def _locked(self):
        """One writer at a time, across processes (the local AWS and `harness cache clear`)."""
        with open(self.root / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def find(self, key: Key) -> dict | None:
        """The usable entry for the key (its outputs all present, not expired), or None."""
        path = self.entries_dir / f"{key.digest}.json"
        entry = _read(path, _entry_problem)
        if entry is None:
            return None
        if self.expire_after is not None and time.time() - entry["created"] > self.expire_after:
            return None
        for output in entry["outputs"]:
            if not self._intact(output):
                return None  # evicted or changed under it: run the job again
        with self._locked():
            entry["last_used"] = time.time()
            atomic_write(path, json.dumps(entry, sort_keys=True).encode())
        return entry

    def _intact(self, output: dict) -> bool:
        blob = self.blobs / output["blob"]
        try:
            with open(blob, "rb") as stream:
                return hashlib.file_digest(stream, "sha256").hexdigest() == output["blob"]
        except OSError:
            return False

    def read(self, output: dict) -> bytes:
        return (self.blobs / output["blob"]).read_bytes()

    def explain_miss(self, key: Key) -> str:
        """Why there is no entry: what differs from the nearest earlier run of the same step,
        a completed one or one that failed or was stopped."""
        candidates = [e for e in self.entries() + self._unfinished() if e["step"] == key.step]
        if not candidates:
            return "no earlier run of this step"
        nearest = min(candidates, key=lambda e: (len(_differences(e["fields"], key.fields)), -e["created"]))
        differences = _differences(nearest["fields"], key.fields)
        ended = nearest.get("status")
        if not differences:
            if ended:
                return f"the same as job {nearest['job']}, which {ended.lower()} (such jobs are not cached)"
            return f"the run of job {nearest['job']} expired or its outputs are gone"
        return (
            f"differs from job {nearest['job']}{f' ({ended})' if ended else ''}: "
            + "; ".join(differences[:5])
            + (f"; and {len(differences) - 5} more" if len(differences) > 5 else "")
        )

    def store(self, key: Key, job: str, outputs: list[tuple[dict, bytes]], extra: dict) -> None:
        """Record a completed job: `outputs` are (where it goes, by the request's terms; the bytes)."""
        recorded = []
        with self._locked():
            for where, body in outputs:
                digest = hashlib.sha256(body).hexdigest()
                blob = self.blobs / digest
                if not blob.exists():
                    atomic_write(blob, body)
                recorded.append({**where, "blob": digest, "size": len(body)})
            now = time.time()
            entry = {
                "key": key.digest, "kind": key.kind, "step": key.step, "fields": key.fields, "job": job,
                "outputs": recorded, "extra": extra, "created": now, "last_used": now,
            }  # fmt: skip
            atomic_write(self.entries_dir / f"{key.digest}.json", json.dumps(entry, sort_keys=True).encode())
            self._evict()

    def note_unfinished(self, key: Key, job: str, status: str) -> None:
        """A job with this key ended `status` (Failed, Stopped): kept for explain_miss only."""
        record = {"key": key.digest, "step": key.step, "fields": key.fields, "job": job, "status": status}
        with self._locked():
            atomic_write(
                self.unfinished_dir / f"{key.digest}.json",
                json.dumps(record | {"created": time.time()}, sort_keys=True).encode(),
            )
            kept = sorted(self.unfinished_dir.glob("*.json"), key=lambda p: p.stat().st_mtime)
            for old in kept[:-UNFINISHED_KEPT]:
                old.unlink(missing_ok=True)

    def _unfinished(self) -> list[dict]:
        found = [_read(path, _unfinished_problem) for path in sorted(self.unfinished_dir.glob("*.json"))]
        return [e for e in found if e is not None]

    def entries(self) -> list[dict]:
        found = [_read(path, _entry_problem) for path in sorted(self.entries_dir.glob("*.json"))]
        return [e for e in found if e is not None]

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.blobs.iterdir() if p.is_file())

    def clear(self) -> int:
        with self._locked():
            entries = list(self.entries_dir.glob("*.json"))
            unfinished = list(self.unfinished_dir.glob("*.json"))
            for path in entries + unfinished + [p for p in self.blobs.iterdir() if p.is_file()]:
                path.unlink(missing_ok=True)
        return len(entries)

    def _evict(self) -> None:
        """Least recently used entries out until the blobs fit; then blobs no entry names."""
        entries = sorted(self.entries(), key=lambda e: e["last_used"])
        while entries and self.size() > self.max_bytes:
            oldest = entries.pop(0)
            (self.entries_dir / f"{oldest['key']}.json").unlink(missing_ok=True)
            kept = {o["blob"] for e in entries for o in e["outputs"]}
            for output in oldest["outputs"]:
                if output["blob"] not in kept:
                    (self.blobs / output["blob"]).unlink(missing_ok=True)


def _differences(before: dict, after: dict) -> list[str]:
    found = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):  # an input manifest
            changed = sorted(p for p in set(old) & set(new) if old[p] != new[p])
            added, removed = sorted(set(new) - set(old)), sorted(set(old) - set(new))
            parts = [
                _objects(paths, what)
                for paths, what in ((changed, "changed"), (added, "added"), (removed, "removed"))
                if paths
            ]
            found.append(f"{name}: {', '.join(parts)}")
        else:
            found.append(f"{name}: {_shown(old)} -> {_shown(new)}")
    return found


def _objects(paths: list[str], what: str) -> str:
    """`3 objects changed`, naming them when there are few: `1 object changed (jobs/evaluate.py)`."""
    count = f"{len(paths)} object{'s' if len(paths) != 1 else ''} {what}"
    return f"{count} ({', '.join(paths)})" if len(paths) <= 3 else count


def _shown(value: Any) -> str:
    return "(none)" if value is None else str(value)


def _read(path: Path, problem_of) -> dict | None:
    """The entry or record at `path`; one that is not JSON or not of its shape is moved aside
    (state_files.quarantine says so) and counts as absent: the job runs, as on a miss."""
    try:
        found = json.loads(path.read_text())
    except FileNotFoundError:
        return None  # evicted or cleared meanwhile
    except (OSError, ValueError) as ex:
        quarantine(path, f"not JSON: {ex}")
        return None
    problem = problem_of(found)
    if problem:
        quarantine(path, problem)
        return None
    return found


_NUMBER = (int, float)
_BLOB = re.compile(r"[0-9a-f]{64}")
_ENTRY_MEMBERS = {
    "key": str, "kind": str, "step": str, "job": str, "fields": dict, "outputs": list, "extra": dict,
    "created": _NUMBER, "last_used": _NUMBER,
}  # fmt: skip
_UNFINISHED_MEMBERS = {"key": str, "step": str, "job": str, "status": str, "fields": dict, "created": _NUMBER}
# What each role of an output holds besides its blob (cached_runner places it by them).
_OUTPUT_MEMBERS = {
    "location": {"field": str, "suffix": str},
    "model": {},
    "output": {},  # a training job's output.tar.gz; a processing job's output also has:
    "transform": {"relative": str},
}
_NAMED_OUTPUT_MEMBERS = {"name": str, "relative": str}


def _members_problem(document, members: dict) -> str | None:
    if not isinstance(document, dict):
        return f"a JSON {type(document).__name__}, not an object"
    for name, kind in members.items():
        value = document.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"{name!r} is {json.dumps(value)[:40]}"
    return None


def _entry_problem(entry) -> str | None:
    problem = _members_problem(entry, _ENTRY_MEMBERS)
    if problem:
        return problem
    for output in entry["outputs"]:
        if not isinstance(output, dict) or not _BLOB.fullmatch(str(output.get("blob"))):
            return f"an output is {json.dumps(output)[:60]}"
        role = output.get("role")
        if role not in _OUTPUT_MEMBERS:
            return f"an output's role is {json.dumps(role)[:40]}"
        needs = _OUTPUT_MEMBERS[role]
        if role == "output" and entry["kind"] == PROCESSING.resource:
            needs = _NAMED_OUTPUT_MEMBERS
        problem = _members_problem(output, needs)
        if problem:
            return f"an output's {problem}"
    metrics = entry["extra"].get("metrics", [])
    if not isinstance(metrics, list) or not all(
        isinstance(m, list) and len(m) == 2 and isinstance(m[0], str) and isinstance(m[1], _NUMBER)
        for m in metrics
    ):
        return f"its metrics are {json.dumps(metrics)[:40]}"
    return None


def _unfinished_problem(record) -> str | None:
    return _members_problem(record, _UNFINISHED_MEMBERS)


def default_root(state_dir: Path) -> Path:
    return Path(os.environ.get("MLHARNESS_CACHE_DIR") or Path(state_dir) / "cache")
