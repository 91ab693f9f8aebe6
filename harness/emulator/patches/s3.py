"""Patches to moto's S3."""

from __future__ import annotations

import base64
import binascii
import hashlib


def digest_problem(content_md5: str, body: bytes) -> str | None:
    """The S3 error code for a Content-MD5 header that is not the body's: InvalidDigest when it
    is no MD5 at all, BadDigest when it is another body's."""
    try:
        digest = base64.b64decode(content_md5, validate=True)
    except (binascii.Error, ValueError):
        return "InvalidDigest"
    if len(digest) != 16:
        return "InvalidDigest"
    return None if digest == hashlib.md5(body).digest() else "BadDigest"  # noqa: S324 (S3's own check)


_DIGEST_MESSAGES = {
    "InvalidDigest": "The Content-MD5 you specified was invalid.",
    "BadDigest": "The Content-MD5 you specified did not match what we received.",
}


def refuse_invalid_bucket_names() -> None:
    """moto checked a bucket name's length only: `Bad_Bucket`, `-abc`, `192.168.1.1` or
    `abc..def` were created, where AWS answers InvalidBucketName."""
    from moto.s3.exceptions import InvalidBucketName
    from moto.s3.models import S3Backend

    from harness.aws_names import bucket_problem

    upstream = S3Backend.create_bucket
    if getattr(upstream, "__wrapped__", None) is not None:
        return  # already applied

    def create_bucket(backend, bucket_name, *args, **kwargs):
        if bucket_problem(bucket_name):
            raise InvalidBucketName()
        return upstream(backend, bucket_name, *args, **kwargs)

    create_bucket.__wrapped__ = upstream
    S3Backend.create_bucket = create_bucket


def check_content_md5() -> None:
    """moto ignored Content-MD5: a body that arrived damaged was stored. As S3 does, a request
    whose Content-MD5 is not its body's is refused (BadDigest; InvalidDigest when it is no
    MD5), and nothing is written."""
    from moto.s3.exceptions import S3ClientError
    from moto.s3.responses import S3Response

    if getattr(S3Response._key_response, "__wrapped__", None) is not None:
        return  # already applied

    def checked(upstream):
        def response(self, request, full_url):
            content_md5 = self.headers.get("Content-MD5") or self.headers.get("content-md5")
            streamed = "aws-chunked" in (self.headers.get("Content-Encoding") or "") or (
                self.headers.get("x-amz-content-sha256") or ""
            ).startswith("STREAMING-")  # the digest is of the decoded payload, checked after decoding
            if content_md5 and request.method in ("PUT", "POST") and not streamed:
                body = self.body if isinstance(self.body, bytes) else (self.body or "").encode()
                problem = digest_problem(content_md5, body)
                if problem:
                    raise S3ClientError(problem, _DIGEST_MESSAGES[problem])
            return upstream(self, request, full_url)

        response.__wrapped__ = upstream
        return response

    S3Response._key_response = checked(S3Response._key_response)
    S3Response._bucket_response = checked(S3Response._bucket_response)
