"""Whatever fails inside the local AWS answers in the caller's protocol, never as HTML."""

from __future__ import annotations

import io
import json
import logging

import pytest

from harness.emulator import protocol_errors

SIGNED = (
    "AWS4-HMAC-SHA256 Credential=test/20261207/us-east-1/{}/aws4_request, SignedHeaders=host, Signature=x"
)


def _raising(environ, start_response):
    raise RecursionError("maximum recursion depth exceeded")


def _html_500(environ, start_response):
    start_response("500 INTERNAL SERVER ERROR", [("Content-Type", "text/html; charset=utf-8")])
    return [b"<!doctype html><title>500</title>"]


def _answer(app, **environ):
    answer = {}

    def start_response(status, headers):
        answer["status"], answer["headers"] = status, dict(headers)

    base = {"REQUEST_METHOD": "POST", "PATH_INFO": "/", "wsgi.input": io.BytesIO(b"")}
    body = b"".join(protocol_errors.serving(app)({**base, **environ}, start_response)).decode()
    return answer["status"], answer["headers"], body


@pytest.mark.parametrize("app", [_raising, _html_500], ids=["raises", "answers an HTML 500"])
def test_each_protocol_gets_its_own_error_document(app, caplog):
    with caplog.at_level(logging.ERROR):
        status, headers, body = _answer(
            app,
            HTTP_X_AMZ_TARGET="SageMaker.DescribeFeatureGroup",
            **{protocol_errors.OPERATION_KEY: "sagemaker.X"},
        )
    assert status.startswith("500") and headers["x-amzn-ErrorType"] == "InternalFailure"
    assert json.loads(body)["__type"] == "InternalFailure" and "sagemaker.X" in body
    assert "the local AWS failed on sagemaker.X" in caplog.text  # logged, with its traceback when raised

    _, headers, body = _answer(app, HTTP_AUTHORIZATION=SIGNED.format("sts"))
    assert headers["Content-Type"] == "text/xml" and "<Code>InternalFailure</Code>" in body
    _, headers, body = _answer(app, PATH_INFO="/bucket/key", REQUEST_METHOD="GET")
    assert headers["Content-Type"] == "application/xml" and "<Code>InternalError</Code>" in body
    _, headers, body = _answer(app, PATH_INFO="/_mlharness/cache")
    assert "the local AWS failed on POST /_mlharness/cache" in json.loads(body)["message"]
    _, headers, body = _answer(app, PATH_INFO="/endpoints/e/invocations")
    assert headers["x-amzn-ErrorType"] == "InternalFailure"


def test_answers_that_are_not_html_500s_pass_untouched():
    def app(environ, start_response):
        start_response("500 Internal Server Error", [("Content-Type", "application/xml")])
        return [b"<Error><Code>InternalError</Code></Error>"]  # already in S3's shape

    assert _answer(app)[2] == "<Error><Code>InternalError</Code></Error>"


def test_a_json_protocol_answer_labelled_html_is_labelled_as_json():
    def app(environ, start_response):
        start_response("400 Bad Request", [("Content-Type", "text/html; charset=utf-8")])
        return [b'{"__type": "ResourceNotFoundException", "message": "Rule x does not exist."}']

    status, headers, body = _answer(app, HTTP_X_AMZ_TARGET="AWSEvents.DisableRule")
    assert status.startswith("400") and headers["Content-Type"] == "application/x-amz-json-1.1"
    assert json.loads(body)["__type"] == "ResourceNotFoundException"
