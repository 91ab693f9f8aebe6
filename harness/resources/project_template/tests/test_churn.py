"""The churn pipeline against a local AWS of the tests' own (the mlharness pytest plugin):
its jobs run in containers as on SageMaker, its roles' policies are evaluated strictly."""

import pytest


@pytest.fixture(scope="module")
def trained(pipelines):
    return pipelines.run("churn")


def test_the_pipeline_trains_gates_and_scores_every_test_customer(trained, aws_client):
    assert trained.status == "SUCCEEDED", trained.cause
    assert trained.output["evaluation"]["metrics"]["auc"] >= trained.input["Threshold"]
    assert (
        trained.jobs["Train"]["AlgorithmSpecification"]["TrainingImage"]
        != trained.jobs["Preprocess"]["AppSpecification"]["ImageUri"]
    )  # training ran in the project's own image
    bucket, prefix = trained.input["PredictionsUri"].removeprefix("s3://").split("/", 1)
    s3 = aws_client("s3")
    (found,) = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    scores = s3.get_object(Bucket=bucket, Key=found["Key"])["Body"].read().decode().split()
    assert len(scores) == trained.output["evaluation"]["metrics"]["test_rows"]
    assert all(0.0 <= float(score) <= 1.0 for score in scores)


def test_a_model_below_the_threshold_stops_before_it_is_served(pipelines, trained):
    strict = {**trained.input, "Threshold": 1.01}
    result = pipelines.run("churn", input=strict)
    assert result.status == "FAILED" and result.error == "AucBelowThreshold"
    assert "CreateModel" not in result.states_entered()


def test_customers_without_the_label_are_refused_before_anything_runs(pipelines, tmp_path):
    bad = tmp_path / "customers.csv"
    bad.write_text("customer_id,tenure_months\nc1,3\n")
    with pytest.raises(Exception, match="lacks column"):
        pipelines.run("churn", inputs={"customers": bad})
