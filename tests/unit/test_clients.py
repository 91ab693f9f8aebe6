import pytest

from harness.clients import ClientFactory, EndpointRefused


@pytest.mark.parametrize(
    "endpoint", ["https://s3.amazonaws.com", "http://10.0.0.5:4566", "http://example.com:4566"]
)
def test_the_local_target_refuses_endpoints_off_this_machine(endpoint):
    with pytest.raises(EndpointRefused):
        ClientFactory("us-east-1", local_endpoint=endpoint)


def test_local_clients_ignore_the_environments_credentials_and_endpoint(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALLOOKINGKEY00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "real-looking-secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://s3.amazonaws.com")
    monkeypatch.setenv("AWS_PROFILE", "production")
    factory = ClientFactory("us-east-1", local_endpoint="http://127.0.0.1:4566")
    s3 = factory.client("s3")
    assert s3.meta.endpoint_url == "http://127.0.0.1:4566"
    assert s3._request_signer._credentials.access_key == "test"
    assert factory.client("s3") is s3
