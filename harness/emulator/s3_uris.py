"""S3 object URIs in the forms clients write them: `s3://bucket/key`, path style on any host
(`http://127.0.0.1:4566/bucket/key`, `localhost`, `s3.us-east-1.amazonaws.com`) and
virtual-host style (`bucket.s3.amazonaws.com`, `bucket.s3.us-east-1.amazonaws.com`,
`bucket.localhost`), with `?versionId=`. Used for TemplateURLs and for job inputs."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qs, unquote, urlparse

# bucket.s3.amazonaws.com, bucket.s3.us-east-1.amazonaws.com, bucket.s3-us-west-2.amazonaws.com,
# bucket.s3.localhost.localstack.cloud
_VIRTUAL_HOST = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9.-]*?)\.s3[.-]")


def object_of_url(url: str, bucket_exists) -> tuple[str, str, str | None]:
    """(bucket, key, version id) of an S3 URI; `bucket_exists(name)` settles the hosts
    that could be read either way. ValueError for what is not an S3 URL."""
    parsed = urlparse(url)
    version = (parse_qs(parsed.query).get("versionId") or [None])[0]
    if parsed.scheme == "s3":
        return parsed.netloc, unquote(parsed.path.lstrip("/")), version
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(url)
    host = parsed.hostname.lower()
    path = unquote(parsed.path.lstrip("/"))
    virtual = _VIRTUAL_HOST.match(host)
    if virtual and not host.startswith(("s3.", "s3-")):
        return virtual["bucket"], path, version
    if host.endswith(".localhost"):
        return host.removesuffix(".localhost"), path, version
    bucket, _, key = path.partition("/")
    if _is_path_style_host(host) or bucket_exists(bucket) or not bucket_exists(host.split(".")[0]):
        return bucket, key, version
    return host.split(".")[0], path, version


def _is_path_style_host(host: str) -> bool:
    if host == "localhost" or host.startswith(("s3.", "s3-")) or host == "s3.amazonaws.com":
        return True
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False
