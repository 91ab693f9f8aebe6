"""The lineage of a run, or of an artifact it produced, from the project's run records.

A run's record says what made it (each input with its sha256, the code bundle and the
project's git revision, each image by digest, the parameters), what it consumed (an
artifact kind -> the run whose artifact it used), and what it produced (kind -> the
artifact's record). Walked both ways from one run: upstream through what it consumed, to
the runs that made those artifacts, and so on; downstream to every run that consumed what
it produced. An artifact is named by its run id or by any URI its record holds (a model's
`ModelArtifactUri`, say).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.records import RunRecord


class UnknownRun(LookupError):
    """Neither a run id nor an artifact URI of a recorded run; the message says which."""


@dataclass
class Lineage:
    run: RunRecord
    made_by: list[tuple[str, Lineage]] = field(default_factory=list)  # (kind, the producing run's)
    used_by: list[tuple[str, RunRecord]] = field(default_factory=list)  # (kind, a consuming run)
    artifact: str | None = None  # the kind named, when the lineage of an artifact was asked


def of(name: str, known: list[RunRecord]) -> Lineage:
    """The lineage of the run `name` names, or of the artifact it names (by URI)."""
    by_id = {record.run_id: record for record in known}
    if name in by_id:
        return _walk(by_id[name], by_id, known, set())
    for record in known:
        for kind, artifact in record.produced.items():
            if isinstance(artifact, dict) and name in _uris(artifact):
                found = _walk(record, by_id, known, set())
                found.artifact = kind
                return found
    raise UnknownRun(f"{name} is neither a recorded run nor a URI of an artifact a recorded run produced")


def _walk(record: RunRecord, by_id: dict[str, RunRecord], known: list[RunRecord], seen: set[str]) -> Lineage:
    seen = seen | {record.run_id}
    found = Lineage(record)
    for kind, producer in sorted(record.consumed.items()):
        if producer in by_id and producer not in seen:
            found.made_by.append((kind, _walk(by_id[producer], by_id, known, seen)))
    found.used_by = [
        (kind, other)
        for other in known
        for kind, producer in sorted(other.consumed.items())
        if producer == record.run_id
    ]
    return found


def _uris(artifact: dict) -> set[str]:
    return {value for value in artifact.values() if isinstance(value, str) and "://" in value}


def lines(lineage: Lineage, indent: str = "") -> list[str]:
    """The lineage as the command prints it: the run and what made it, then what used it."""
    run = lineage.run
    named = f"the {lineage.artifact} of " if lineage.artifact else ""
    out = [f"{indent}{named}run {run.run_id} ({run.pipeline}, {run.status}, started {run.started_at})"]
    inner = indent + "  "
    revision = run.project.get("git_revision") or "not recorded"
    if run.project.get("git_dirty"):
        revision += " (with uncommitted changes)"
    out.append(f"{inner}code: revision {revision}; bundle sha256 {run.code.get('sha256', 'not recorded')}")
    for name, given in sorted(run.inputs.items()):
        out.append(
            f"{inner}input {name}: sha256 {given.get('sha256')} ({given.get('uri') or given.get('path')})"
        )
    for name, image in sorted(run.images.items()):
        reference = image.get("reference") or image.get("id") if isinstance(image, dict) else image
        out.append(f"{inner}image {name}: {reference}")
    if run.parameters:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(run.parameters.items()))
        out.append(f"{inner}parameters: {shown}")
    if run.metrics:
        out.append(f"{inner}metrics: " + ", ".join(f"{k}={v}" for k, v in sorted(run.metrics.items())))
    for kind, artifact in sorted(run.produced.items()):
        uris = sorted(_uris(artifact)) if isinstance(artifact, dict) else []
        out.append(f"{inner}produced {kind}" + (f": {', '.join(uris)}" if uris else ""))
    for kind, producer in lineage.made_by:
        out.append(f"{inner}consumed the {kind} of:")
        out += lines(producer, inner + "  ")
    consumed_elsewhere = {
        k: v for k, v in run.consumed.items() if v not in {p.run.run_id for _, p in lineage.made_by}
    }
    for kind, producer in sorted(consumed_elsewhere.items()):
        out.append(f"{inner}consumed the {kind} of run {producer} (not recorded here)")
    for kind, user in lineage.used_by:
        out.append(f"{inner}its {kind} used by run {user.run_id} ({user.pipeline}, {user.status})")
    return out
