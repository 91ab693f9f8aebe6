"""The step cache in front of a runner: a hit writes the recorded outputs where the new job's
request says and ends Completed without a container; a miss says why in the job's log,
runs, and records what the job wrote when it completes (step_cache.py has the rules)."""

from __future__ import annotations

import collections
import logging
import threading
import time

from harness.emulator.fidelity import JOURNAL
from harness.emulator.sagemaker import channels, metrics, step_cache
from harness.emulator.sagemaker.runner import JobOutcome, JobRunner, JobSpec, LogFactory, StopSignal
from mlharness.kinds import PROCESSING, TRAINING

log = logging.getLogger(__name__)


class CachedRunner(JobRunner):
    def __init__(self, inner, cache: step_cache.StepCache):
        """inner: the runner that runs jobs (it also gives the S3 access, inner.s3(spec))."""
        self.inner = inner
        self.cache = cache
        self._bypass: set[str] = set()  # job-name prefixes run without the cache (`run --no-cache`)
        self._lock = threading.Lock()
        # What the cache did with each job, for the harness's run display and record.
        self._events: collections.deque[dict] = collections.deque(maxlen=10000)

    def bypass(self, prefix: str) -> None:
        with self._lock:
            self._bypass.add(prefix)

    def events(self, prefix: str) -> list[dict]:
        """What the cache did with the jobs whose names start with prefix, oldest first."""
        with self._lock:
            return [e for e in self._events if e["job"].startswith(prefix)]

    def _note(self, spec: JobSpec, outcome: str, detail: str) -> None:
        with self._lock:
            event = {"job": spec.name, "kind": spec.kind.resource, "outcome": outcome, "detail": detail}
            self._events.append(event | {"time": time.time()})

    def run(self, spec: JobSpec, logs: LogFactory, stop: StopSignal) -> JobOutcome:
        key, why_not = self._key(spec)
        first_host = spec.kind.first_host
        if key is None:
            self._note(spec, "not cached", why_not)
        else:
            entry = self.cache.find(key)
            if entry is not None:
                self._note(spec, "hit", entry["job"])
                JOURNAL.note(
                    spec.name,
                    "cache",
                    f"served from the step cache (the outputs of job {entry['job']}): its code did not run",
                )
                return self._serve(spec, key, entry, logs(first_host))
            reason = self.cache.explain_miss(key)
            self._note(spec, "miss", reason)
            first_log = logs(first_host)
            first_log(f"local AWS: step cache miss ({reason}): running the job")
            logs = _reusing(logs, first_host, first_log)
        compiled = metrics.patterns(
            (spec.request.get("AlgorithmSpecification") or {}).get("MetricDefinitions")
        )
        last: dict[str, float] = {}
        outcome = self.inner.run(spec, _watching(logs, compiled, last), stop)
        if key is not None:
            try:
                if outcome.status == "Completed":
                    self._store(spec, key, outcome, last)
                else:
                    self.cache.note_unfinished(key, spec.name, outcome.status)
            except Exception:  # a cache that cannot record must not fail the job
                log.warning("could not record job %s in the step cache", spec.name, exc_info=True)
        return outcome

    def stop(self, spec: JobSpec) -> None:
        self.inner.stop(spec)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def s3(self, spec: JobSpec):
        return self.inner.s3(spec)

    def image_id(self, image: str) -> str | None:
        return self.inner.image_id(image)

    # -- the key, a hit, a record --------------------------------------------------
    def _key(self, spec: JobSpec) -> tuple[step_cache.Key | None, str]:
        """The job's key, or None and why it is run without the cache."""
        with self._lock:
            if any(spec.name.startswith(prefix) for prefix in self._bypass):
                return None, "the run asked for no cache"
        try:
            image = _image_of(spec)
            image_id = self.inner.image_id(image)
            if image_id is None:
                raise LookupError(f"no image {image}")
            key = step_cache.key_of(spec, self.inner.s3(spec), image_id)
        except Exception as ex:  # a missing image or input: no key, and the job fails as it would
            return None, f"its image or inputs cannot be read ({ex})"
        return key, "" if key is not None else step_cache.why_uncacheable(spec)

    def _serve(self, spec: JobSpec, key: step_cache.Key, entry: dict, log_line) -> JobOutcome:
        data = self.inner.s3(spec)
        for output in entry["outputs"]:
            if output["role"] == "location":
                where = key.locations[output["field"]] + output["suffix"]
            else:
                where = _destination(spec, output)
            data.put(self.cache.read(output), where)
        log_line(f"local AWS: served from the step cache: the outputs of job {entry['job']}")
        model = _destination(spec, {"role": "model"}) if spec.kind is TRAINING else None
        return JobOutcome(
            "Completed",
            model_artifacts=model,
            outputs=list(data.written),
            metrics=[tuple(m) for m in entry["extra"].get("metrics", [])],
            served_from=entry["job"],
        )

    def _store(self, spec: JobSpec, key, outcome: JobOutcome, last: dict[str, float]) -> None:
        data = self.inner.s3(spec)
        outputs = []
        for uri in outcome.outputs:
            where = _role_of(spec, uri)
            if where is not None:
                outputs.append((where, data.get(uri)))
        for field, location in key.locations.items():  # what the job wrote there itself
            _, prefix = data.locate(location)
            for item in _objects_or_none(data, location):
                where = {"role": "location", "field": field, "suffix": item.key[len(prefix) :]}
                outputs.append((where, data.read(item)))
        self.cache.store(key, spec.name, outputs, {"metrics": sorted(last.items())})


def _objects_or_none(data: channels.S3Data, uri: str) -> list[channels.S3Object]:
    try:
        return data.objects(uri)
    except channels.DataError:
        return []


def _image_of(spec: JobSpec) -> str:
    if spec.kind is TRAINING:
        return spec.request["AlgorithmSpecification"]["TrainingImage"]
    if spec.kind is PROCESSING:
        return spec.request["AppSpecification"]["ImageUri"]
    return spec.model_container["Image"]


def _training_output(spec: JobSpec) -> str:
    return f"{spec.request['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{spec.name}/output"


def _role_of(spec: JobSpec, uri: str) -> dict | None:
    """Where an output URI sits, in terms another job's request can place again."""
    if spec.kind is TRAINING:
        for role, file_name in (("model", "model.tar.gz"), ("output", "output.tar.gz")):
            if uri == f"{_training_output(spec)}/{file_name}":
                return {"role": role}
        return None
    if spec.kind is PROCESSING:
        for item in (spec.request.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
            base = item["S3Output"]["S3Uri"].rstrip("/") + "/"
            if uri.startswith(base):
                return {"role": "output", "name": item["OutputName"], "relative": uri[len(base) :]}
        return None
    base = spec.request["TransformOutput"]["S3OutputPath"].rstrip("/") + "/"
    return {"role": "transform", "relative": uri[len(base) :]} if uri.startswith(base) else None


def _destination(spec: JobSpec, where: dict) -> str:
    if spec.kind is TRAINING:
        return f"{_training_output(spec)}/{'model.tar.gz' if where['role'] == 'model' else 'output.tar.gz'}"
    if spec.kind is PROCESSING:
        for item in (spec.request.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
            if item["OutputName"] == where["name"]:
                return f"{item['S3Output']['S3Uri'].rstrip('/')}/{where['relative']}"
        raise channels.DataError(f"ClientError: no output named {where['name']}")
    return f"{spec.request['TransformOutput']['S3OutputPath'].rstrip('/')}/{where['relative']}"


def _reusing(logs: LogFactory, host: str, sink) -> LogFactory:
    """The log factory, giving back the sink already made for `host` (one stream per host)."""

    def make(name: str):
        return sink if name == host else logs(name)

    return make


def _watching(logs: LogFactory, compiled, last: dict[str, float]) -> LogFactory:
    """The log factory, keeping the last value of each metric the lines carry."""
    if not compiled:
        return logs

    def make(name: str):
        sink = logs(name)

        def write(line: str) -> None:
            sink(line)
            for metric, value in metrics.found_in(line, compiled):
                last[metric] = value

        return write

    return make
