"""Hyperparameter tuning that really runs: the training jobs a tuning job asks for, each a
real job, at most MaxParallelTrainingJobs at a time, the best one by the objective metric.

Strategies: `Random` (each range sampled, with its ScalingType), `Grid` (every combination
of the categorical ranges, in order) and `Bayesian` (a Gaussian process over the
finished jobs and expected improvement, scikit-learn's; random until a few have
finished). `Hyperband` is refused. Early stopping `Auto` is accepted and never stops a
job early here (AWS may stop ones that do worse than the rest).
"""

from __future__ import annotations

import itertools
import math
import random
import warnings
from collections.abc import Callable
from typing import Any

from harness.emulator.sagemaker import algorithms
from harness.emulator.sagemaker.jobs import Job
from mlharness.kinds import TUNING

STRATEGIES = ("Random", "Grid", "Bayesian")
RANDOM_START = 3  # Bayesian: jobs run at random before the model guides the search


class TuningError(ValueError):
    """The request is refused; the message is the ValidationException's."""


def _check_range(item: dict[str, Any], integer: bool) -> None:
    """A numeric range's bounds are numbers (integers for an integer range), in order, and fit
    its scaling."""
    bounds = []
    for member in ("MinValue", "MaxValue"):
        text = item[member]
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            kind = "an integer" if integer else "a number"
            raise TuningError(f"Parameter {item['Name']}: {member} '{text}' is not {kind}.") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise TuningError(f"Parameter {item['Name']}: {member} '{text}' is not a finite number.")
        bounds.append(float(value))
    low, high = bounds
    if low > high:
        raise TuningError(f"Parameter {item['Name']}: MinValue {low:g} is greater than MaxValue {high:g}.")
    if item.get("ScalingType") == "Logarithmic" and low <= 0:
        raise TuningError(f"Parameter {item['Name']}: Logarithmic scaling needs a MinValue above 0.")
    if item.get("ScalingType") == "ReverseLogarithmic" and not (0 <= low and high < 1):
        raise TuningError(f"Parameter {item['Name']}: ReverseLogarithmic scaling needs values in [0, 1).")


def check(request: dict[str, Any]) -> None:
    """Refuse, as AWS does, what a tuning job cannot run; and what the local AWS does not."""
    config = request["HyperParameterTuningJobConfig"]
    if request.get("TrainingJobDefinitions"):
        raise TuningError("TrainingJobDefinitions: the local AWS tunes one training job definition only.")
    if request.get("WarmStartConfig"):
        raise TuningError("WarmStartConfig: the local AWS does not warm-start tuning jobs.")
    definition = request.get("TrainingJobDefinition")
    if not definition:
        raise TuningError("TrainingJobDefinition must be specified.")
    strategy = config.get("Strategy")
    if strategy not in STRATEGIES:
        raise TuningError(f"Strategy {strategy}: the local AWS runs the {', '.join(STRATEGIES)} strategies.")
    ranges = config.get("ParameterRanges") or {}
    if strategy == "Grid" and (
        ranges.get("IntegerParameterRanges") or ranges.get("ContinuousParameterRanges")
    ):
        raise TuningError("The Grid strategy takes categorical parameter ranges only.")
    if not any(
        ranges.get(kind)
        for kind in ("IntegerParameterRanges", "ContinuousParameterRanges", "CategoricalParameterRanges")
    ):
        raise TuningError("ParameterRanges must name at least one hyperparameter to tune.")
    for kind in ("IntegerParameterRanges", "ContinuousParameterRanges"):
        for item in ranges.get(kind, []):
            _check_range(item, integer=kind == "IntegerParameterRanges")
    objective = config.get("HyperParameterTuningJobObjective")
    if strategy != "Grid" and not objective:
        raise TuningError("HyperParameterTuningJobObjective must be specified.")
    if objective:
        algorithm = definition.get("AlgorithmSpecification") or {}
        names = [d["Name"] for d in algorithm.get("MetricDefinitions") or []]
        built_in = algorithms.algorithm_of(algorithm.get("TrainingImage"))
        if not names and built_in:  # a built-in algorithm defines its metrics
            problem = algorithms.objective_problem(built_in, objective["MetricName"])
            if problem:
                raise TuningError(problem)
        elif objective["MetricName"] not in names:
            raise TuningError(
                f"The objective metric {objective['MetricName']} is not one of the MetricDefinitions "
                f"of the training job definition ({', '.join(names) or 'none'})."
            )


def grid(config: dict[str, Any]) -> list[dict[str, str]]:
    """Every combination of the categorical ranges, in the order they are given."""
    ranges = (config.get("ParameterRanges") or {}).get("CategoricalParameterRanges") or []
    names = [r["Name"] for r in ranges]
    return [
        dict(zip(names, values, strict=True)) for values in itertools.product(*(r["Values"] for r in ranges))
    ]


def draw(config: dict[str, Any], rng: random.Random) -> dict[str, str]:
    """One random point of the ranges, each range sampled on its scale."""
    ranges = config.get("ParameterRanges") or {}
    point = {}
    for item in ranges.get("IntegerParameterRanges") or []:
        point[item["Name"]] = str(int(round(_scaled(item, rng.random()))))
    for item in ranges.get("ContinuousParameterRanges") or []:
        point[item["Name"]] = repr(_scaled(item, rng.random()))
    for item in ranges.get("CategoricalParameterRanges") or []:
        point[item["Name"]] = rng.choice(item["Values"])
    return point


def _scaled(item: dict[str, Any], u: float) -> float:
    """The value at fraction u (0..1) of a range, on its scale."""
    low, high = float(item["MinValue"]), float(item["MaxValue"])
    scaling = item.get("ScalingType", "Auto")
    if scaling == "Logarithmic":
        return math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    if scaling == "ReverseLogarithmic":
        return 1 - math.exp(math.log(1 - high) + (1 - u) * (math.log(1 - low) - math.log(1 - high)))
    return low + u * (high - low)  # Linear, and Auto (which AWS may also scale linearly)


def _unscaled(item: dict[str, Any], value: float) -> float:
    low, high = float(item["MinValue"]), float(item["MaxValue"])
    scaling = item.get("ScalingType", "Auto")
    if high == low:
        return 0.0
    if scaling == "Logarithmic":
        return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
    if scaling == "ReverseLogarithmic":
        return 1 - (math.log(1 - value) - math.log(1 - high)) / (math.log(1 - low) - math.log(1 - high))
    return (value - low) / (high - low)


class Search:
    """The points a tuning job tries, one at a time, given what has finished."""

    def __init__(self, config: dict[str, Any], seed: int | None):
        self.config = config
        self.strategy = config["Strategy"]
        self.rng = random.Random(seed)
        self.limit = int(config["ResourceLimits"].get("MaxNumberOfTrainingJobs") or 0)
        self._grid = grid(config) if self.strategy == "Grid" else None
        if self._grid is not None:
            self.limit = min(self.limit, len(self._grid)) if self.limit else len(self._grid)
        self.proposed = 0

    def next(self, finished: list[tuple[dict[str, str], float]], maximize: bool) -> dict[str, str] | None:
        """The next point, or None when the job has tried as many as it may."""
        if self.proposed >= self.limit:
            return None
        self.proposed += 1
        if self._grid is not None:
            return self._grid[self.proposed - 1]
        if self.strategy == "Bayesian" and len(finished) >= RANDOM_START:
            return self._expected_improvement(finished, maximize)
        return draw(self.config, self.rng)

    def _expected_improvement(self, finished, maximize: bool) -> dict[str, str]:
        from scipy.stats import norm
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import Matern

        sign = 1.0 if maximize else -1.0
        observed = [self._vector(point) for point, _ in finished]
        scores = [sign * value for _, value in finished]
        model = GaussianProcessRegressor(kernel=Matern(nu=2.5), normalize_y=True, random_state=0)
        with warnings.catch_warnings():  # a few points rarely pin every length scale: no matter here
            warnings.simplefilter("ignore")
            model.fit(observed, scores)
        candidates = [draw(self.config, self.rng) for _ in range(256)]
        mean, std = model.predict([self._vector(c) for c in candidates], return_std=True)
        best = max(scores)
        improvement = []
        for m, s in zip(mean, std, strict=True):
            z = (m - best) / s if s > 0 else 0.0
            improvement.append((m - best) * norm.cdf(z) + s * norm.pdf(z) if s > 0 else max(m - best, 0.0))
        return candidates[max(range(len(candidates)), key=improvement.__getitem__)]

    def _vector(self, point: dict[str, str]) -> list[float]:
        ranges = self.config.get("ParameterRanges") or {}
        vector = [
            _unscaled(item, float(point[item["Name"]]))
            for item in (ranges.get("IntegerParameterRanges") or [])
            + (ranges.get("ContinuousParameterRanges") or [])
        ]
        for item in ranges.get("CategoricalParameterRanges") or []:
            vector += [1.0 if point[item["Name"]] == value else 0.0 for value in item["Values"]]
        return vector


# The CreateTrainingJob members a TrainingJobDefinition carries over to each of its jobs.
DEFINITION_MEMBERS = (
    "AlgorithmSpecification", "RoleArn", "InputDataConfig", "VpcConfig", "OutputDataConfig", "ResourceConfig",
    "StoppingCondition", "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining", "CheckpointConfig", "Environment", "RetryStrategy",
)  # fmt: skip


def settle_resource_config(definition: dict[str, Any]) -> None:
    """A definition given HyperParameterTuningResourceConfig (what the SageMaker SDK sends) gets
    the ResourceConfig its jobs run with, which DescribeHyperParameterTuningJob also shows (the
    SDK's attach reads it): the instance type, count and volume, or the first InstanceConfig's."""
    tuning_resources = definition.get("HyperParameterTuningResourceConfig")
    if definition.get("ResourceConfig") or not tuning_resources:
        return
    first = (tuning_resources.get("InstanceConfigs") or [{}])[0]
    resources = {
        "InstanceType": tuning_resources.get("InstanceType") or first.get("InstanceType"),
        "InstanceCount": tuning_resources.get("InstanceCount") or first.get("InstanceCount", 1),
        "VolumeSizeInGB": tuning_resources.get("VolumeSizeInGB") or first.get("VolumeSizeInGB", 30),
        "VolumeKmsKeyId": tuning_resources.get("VolumeKmsKeyId"),
    }
    definition["ResourceConfig"] = {key: value for key, value in resources.items() if value is not None}


def training_request(tuning_request: dict[str, Any], name: str, point: dict[str, str]) -> dict[str, Any]:
    """The CreateTrainingJob request of one of the tuning job's jobs."""
    definition = tuning_request["TrainingJobDefinition"]
    request = {key: definition[key] for key in DEFINITION_MEMBERS if key in definition}
    request["TrainingJobName"] = name
    request["HyperParameters"] = {**(definition.get("StaticHyperParameters") or {}), **point}
    if tuning_request.get("Tags"):
        request["Tags"] = tuning_request["Tags"]
    return request


class TuningRun(Job):
    """A tuning job: a Job (its request, status, times) whose training jobs the backend starts;
    `describe_job(name)` is DescribeTrainingJob's answer of one of them."""

    def __init__(self, arn: str, request: dict[str, Any], created, describe_job: Callable[[str], dict]):
        import threading

        super().__init__(TUNING, arn, request, created)
        self.describe_job = describe_job
        self.jobs: list[tuple[str, dict[str, str]]] = []  # (training job name, tuned hyperparameters)
        self.stop = threading.Event()

    @property
    def config(self) -> dict[str, Any]:
        return self.request["HyperParameterTuningJobConfig"]

    @property
    def objective(self) -> dict[str, str] | None:
        return self.config.get("HyperParameterTuningJobObjective")

    def summaries(self) -> list[dict[str, Any]]:
        """HyperParameterTrainingJobSummary of each of its training jobs."""
        found = []
        for name, point in self.jobs:
            job = self.describe_job(name)
            summary = {
                "TrainingJobName": name,
                "TrainingJobArn": job["TrainingJobArn"],
                "TuningJobName": self.name,
                "CreationTime": job["CreationTime"],
                "TrainingStartTime": job.get("TrainingStartTime"),
                "TrainingEndTime": job.get("TrainingEndTime"),
                "TrainingJobStatus": job["TrainingJobStatus"],
                "TunedHyperParameters": point,
                "FailureReason": job.get("FailureReason"),
            }
            value = self._objective_value(job)
            if self.objective and value is not None:
                metric = {"Type": self.objective["Type"], "MetricName": self.objective["MetricName"]}
                summary["FinalHyperParameterTuningJobObjectiveMetric"] = metric | {"Value": value}
            summary["ObjectiveStatus"] = (
                "Succeeded" if value is not None or not self.objective
                else "Pending" if job["TrainingJobStatus"] in ("InProgress", "Stopping") else "Failed"
            )  # fmt: skip
            found.append({k: v for k, v in summary.items() if v is not None})
        return found

    def _objective_value(self, job: dict[str, Any]) -> float | None:
        if not self.objective or job["TrainingJobStatus"] != "Completed":
            return None
        for metric in job.get("FinalMetricDataList") or []:
            if metric["MetricName"] == self.objective["MetricName"]:
                return float(metric["Value"])
        return None

    def best(self, summaries: list[dict[str, Any]]) -> dict[str, Any] | None:
        scored = [s for s in summaries if "FinalHyperParameterTuningJobObjectiveMetric" in s]
        if not scored:
            return None
        maximize = self.objective["Type"] == "Maximize"
        key = lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]  # noqa: E731
        return max(scored, key=key) if maximize else min(scored, key=key)

    def describe(self) -> dict[str, Any]:
        """The Job's answer, with what its training jobs make of it: the counters, the best job.
        Its own status is read first: a tuning job ends after its training jobs, so an ended one
        never counts a training job InProgress."""
        own = super().describe()
        summaries = self.summaries()
        statuses = [s["TrainingJobStatus"] for s in summaries]
        objectives = [s["ObjectiveStatus"] for s in summaries]
        answer = own | {
            "TrainingJobStatusCounters": {
                "Completed": statuses.count("Completed"),
                "InProgress": statuses.count("InProgress") + statuses.count("Stopping"),
                "RetryableError": 0,
                "NonRetryableError": statuses.count("Failed"),
                "Stopped": statuses.count("Stopped"),
            },
            "ObjectiveStatusCounters": {
                "Succeeded": objectives.count("Succeeded"),
                "Pending": objectives.count("Pending"),
                "Failed": objectives.count("Failed"),
            },
            "BestTrainingJob": self.best(summaries),
        }
        return {k: v for k, v in answer.items() if v is not None}
