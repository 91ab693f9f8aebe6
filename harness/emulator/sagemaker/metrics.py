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
from typing import Any

from harness.emulator.sagemaker.runner import LogSink

NAMESPACE = "/aws/sagemaker/TrainingJobs"


class MetricsRecorder:
    def __init__(self, definitions: list[dict[str, str]], job: Any, account_id: str, region: str):
        self.patterns = [(d["Name"], re.compile(d["Regex"])) for d in definitions or []]
        self.job = job
        self.account_id, self.region = account_id, region
        self._lock = threading.Lock()

    def watching(self, sink: LogSink) -> LogSink:
        """A sink that writes the line and records the metrics it carries."""
        if not self.patterns:
            return sink

        def write(line: str) -> None:
            sink(line)
            self.observe(line)

        return write

    def observe(self, line: str) -> None:
        from moto.cloudwatch.models import cloudwatch_backends
        from moto.core.utils import utcnow

        found = []
        for name, pattern in self.patterns:
            match = pattern.search(line)
            if match is None:
                continue
            try:
                value = float(match.group(1) if pattern.groups else match.group(0))
            except ValueError:
                continue  # the regex matched something that is not a number
            found.append((name, value))
        if not found:
            return
        now = utcnow()
        dimensions = [{"Name": "TrainingJobName", "Value": self.job.training_job_name}]
        cloudwatch_backends[self.account_id][self.region].put_metric_data(
            NAMESPACE,
            [{"MetricName": n, "Value": v, "Timestamp": now, "Dimensions": dimensions} for n, v in found],
        )
        with self._lock:
            final = {m["MetricName"]: m for m in getattr(self.job, "final_metric_data_list", None) or []}
            for name, value in found:
                final[name] = {"MetricName": name, "Value": value, "Timestamp": now}
            self.job.final_metric_data_list = list(final.values())
