"""SageMaker's built-in algorithms, as far as the local AWS needs them: which images are one
(AWS's ECR repositories for them) and the metrics each computes, which a tuning job may take
as its objective without MetricDefinitions (the algorithm defines them, AWS documents them).

Only the images are AWS's: the local AWS cannot pull them, so their training jobs fail as
AWS fails a missing image, naming it. An algorithm whose metrics are not listed here is
not checked: the tuning job is accepted, and its jobs fail on the image.
"""

from __future__ import annotations

import re
from typing import Final


def _each_split(*names: str, splits: tuple[str, ...] = ("validation", "test")) -> tuple[str, ...]:
    return tuple(f"{split}:{name}" for split in splits for name in names)


# repository name -> the objective metrics AWS documents for tuning it (None: not listed here)
METRICS: Final[dict[str, tuple[str, ...] | None]] = {
    # docs: "Tune an XGBoost Model", Evaluation Metrics Computed by the XGBoost Algorithm
    "xgboost": _each_split(
        "accuracy", "auc", "error", "f1", "logloss", "mae", "map", "merror", "mlogloss", "mse", "ndcg",
        "rmse", splits=("validation",),
    ),
    # docs: "Tune a linear learner model", Metrics computed by the linear learner algorithm
    "linear-learner": _each_split(
        "objective_loss", "binary_classification_accuracy", "binary_f_beta", "precision", "recall",
        "absolute_loss", "dcg", "macro_f_beta", "macro_precision", "macro_recall", "mse",
        "multiclass_accuracy", "multiclass_top_k_accuracy", "rmse", "roc_auc_score",
    ),
    "pca": None,
    "kmeans": None,
    "knn": None,
    "factorization-machines": None,
    "ntm": None,
    "lda": None,
    "randomcutforest": None,
    "ipinsights": None,
    "object2vec": None,
    "blazingtext": None,
    "forecasting-deepar": None,
    "image-classification": None,
    "object-detection": None,
    "semantic-segmentation": None,
    "seq2seq": None,
}  # fmt: skip
_ALIASES: Final = {"sagemaker-xgboost": "xgboost"}
_ECR_IMAGE = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/(?P<repository>[^:@]+)[:@]")


def algorithm_of(image: str | None) -> str | None:
    """The built-in algorithm an image URI names (its repository in AWS's ECR), or None."""
    found = _ECR_IMAGE.match(image or "")
    if found is None:
        return None
    repository = _ALIASES.get(found["repository"], found["repository"])
    return repository if repository in METRICS else None


def objective_problem(algorithm: str, metric: str) -> str | None:
    """Why `metric` cannot be the objective of tuning the built-in `algorithm`; None when it can,
    or when the algorithm's metrics are not listed here."""
    metrics = METRICS.get(algorithm)
    if metrics is None or metric in metrics:
        return None
    return (
        f"The objective metric {metric} is not one the {algorithm} algorithm computes "
        f"(it computes {', '.join(metrics)})."
    )
