"""Photo stores: `exists()` answers False only for "not found"; an outage raises instead of passing for missing."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber

from infra.settings import Settings
from infra.storage import LocalPhotoStore, S3PhotoStore, StorageUnavailable

HEAD = {"Bucket": "photos", "Key": "cases/ab/c.jpg"}


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> S3PhotoStore:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return S3PhotoStore("s3://photos/cases", endpoint_url="http://127.0.0.1:9")  # never reached: stubbed


def head(store: S3PhotoStore, **error: object) -> bool:
    with Stubber(store.client) as stub:
        if error:
            stub.add_client_error("head_object", expected_params=HEAD, **error)  # type: ignore[arg-type]
        else:
            stub.add_response("head_object", {"ContentLength": 3}, expected_params=HEAD)
        found = store.exists("ab/c.jpg")
        stub.assert_no_pending_responses()
    return found


def test_s3_exists_for_a_present_object(s3: S3PhotoStore) -> None:
    assert head(s3) is True


@pytest.mark.parametrize("code", ["404", "NoSuchKey", "NotFound"])
def test_s3_not_found_is_missing(s3: S3PhotoStore, code: str) -> None:
    assert head(s3, service_error_code=code, http_status_code=404) is False


@pytest.mark.parametrize(
    ("code", "status"), [("403", 403), ("AccessDenied", 403), ("500", 500), ("SlowDown", 503), ("InternalError", 500)]
)
def test_s3_refusals_and_server_errors_raise(s3: S3PhotoStore, code: str, status: int) -> None:
    with pytest.raises(StorageUnavailable, match=code) as caught:
        head(s3, service_error_code=code, http_status_code=status)
    assert isinstance(caught.value.__cause__, ClientError)


def test_s3_connection_failure_raises(s3: S3PhotoStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(**_: object) -> None:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

    monkeypatch.setattr(s3.client, "head_object", unreachable)
    with pytest.raises(StorageUnavailable, match="EndpointConnectionError"):
        s3.exists("ab/c.jpg")


def test_local_exists(tmp_path: Path) -> None:
    store = LocalPhotoStore(tmp_path)
    assert store.exists("ab/c.jpg") is False
    store.put("ab/c.jpg", b"abc")
    assert store.exists("ab/c.jpg") is True


def test_s3_get_of_a_missing_object_is_file_not_found_like_the_local_store(s3: S3PhotoStore) -> None:
    with Stubber(s3.client) as stub:
        stub.add_client_error("get_object", service_error_code="NoSuchKey", http_status_code=404)
        with pytest.raises(FileNotFoundError):
            s3.get("ab/c.jpg")
        stub.add_client_error("put_object", service_error_code="SlowDown", http_status_code=503)
        with pytest.raises(StorageUnavailable, match="SlowDown"):
            s3.put("ab/c.jpg", b"abc")


def test_an_unavailable_store_answers_503_storage_unavailable(settings: Settings) -> None:
    """A store that cannot be reached is a 503 the app can retry, not a 500."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from pipelines.resources import build_resources
    from tests.integration.test_analyses_api import make_key, photo_bytes, upload

    resources = build_resources(settings)

    class Down(LocalPhotoStore):
        def put(self, key: str, data: bytes, content_type: str = "image/jpeg") -> None:
            raise StorageUnavailable("S3 unreachable (EndpointConnectionError)")

    resources.store = Down(settings.photos_dir)
    with TestClient(create_app(settings, resources=resources)) as client:
        answer = upload(client, make_key(settings), photo_bytes(3))
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "storage_unavailable"
    assert int(answer.headers["Retry-After"]) > 0
