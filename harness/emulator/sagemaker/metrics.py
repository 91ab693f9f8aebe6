"""Training metrics as SageMaker takes them: `AlgorithmSpecification.MetricDefinitions`
applied to the job's log as it runs.

Each line is searched with each definition's regex; the first group (the whole match when
the regex has none) is the value. A value goes to CloudWatch under the namespace
`/aws/sagemaker/TrainingJobs`, dimension `TrainingJobName` (what the SageMaker SDK's
TrainingJobAnalytics reads), and the last value of each metric is the job's
`FinalMetricDataList` in DescribeTrainingJob.
"""

from __future__ import annotations

import re
import threading

from harness.emulator.sagemaker.jobs import Job
from harness.emulator.sagemaker.runner import LogSink

NAMESPACE = "/aws/sagemaker/TrainingJobs"


def patterns(definitions: list[dict[str, str]] | None) -> list[tuple[str, re.Pattern]]:
    return [(d["Name"], re.compile(d["Regex"])) for d in definitions or []]


def found_in(line: str, compiled: list[tuple[str, re.Pattern]]) -> list[tuple[str, float]]:
    """The (metric, value) pairs a log line carries."""
    found = []
    for name, pattern in compiled:
        match = pattern.search(line)
        if match is None:
            continue
        try:
            found.append((name, float(match.group(1) if pattern.groups else match.group(0))))
        except ValueError:
            continue  # the regex matched something that is not a number
    return found


class MetricsRecorder:
    def __init__(self, definitions: list[dict[str, str]], job: Job, account_id: str, region: str):
        self.patterns = patterns(definitions)
        self.job = job
        self.account_id, self.region = account_id, region
        self._lock = threading.Lock()

    def watching(self, sink: LogSink) -> LogSink:
        """A sink that writes the line and records the metrics it carries."""
        if not self.patterns:
            return sink

        def write(line: str) -> None:
            sink(line)
            self.record(found_in(line, self.patterns))

        return write

    def record(self, found: list[tuple[str, float]]) -> None:
        """Metric values, now: CloudWatch datapoints and the job's FinalMetricDataList."""
        from moto.cloudwatch.models import cloudwatch_backends
        from moto.core.utils import utcnow

        if not found:
            return
        now = utcnow()
        dimensions = [{"Name": "TrainingJobName", "Value": self.job.name}]
        cloudwatch_backends[self.account_id][self.region].put_metric_data(
            NAMESPACE,
            [{"MetricName": n, "Value": v, "Timestamp": now, "Dimensions": dimensions} for n, v in found],
        )
        with self._lock:
            final = {m["MetricName"]: m for m in self.job.produced.get("FinalMetricDataList") or []}
            for name, value in found:
                final[name] = {"MetricName": name, "Value": value, "Timestamp": now}
            self.job.produced["FinalMetricDataList"] = list(final.values())
