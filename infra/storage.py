"""Photo storage: a local folder by default, any S3-compatible store (MinIO, AWS) in production."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")


# HEAD answers carry no body, so a missing object shows as the bare status "404"; GETs say NoSuchKey
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def _is_not_found(response: dict[str, Any]) -> bool:
    return str(response.get("Error", {}).get("Code", "")) in _NOT_FOUND_CODES


class StorageUnavailable(RuntimeError):
    """The photo store refused, failed or could not be reached: retry later; never read as "missing".

    The API answers 503 `storage_unavailable` with Retry-After (`api/errors.py`); a task retries."""


@contextmanager
def _s3_answers(*, missing_is: type[Exception] | None = None) -> Iterator[None]:
    """S3 errors as the store's own: not found as `missing_is` (FileNotFoundError, like the local store's),
    everything else (403, 5xx, throttling, no connection) as StorageUnavailable."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        if missing_is is not None and _is_not_found(exc.response):
            raise missing_is(str(exc)) from exc
        raise StorageUnavailable(f"S3 answered {exc.response.get('Error', {}).get('Code', '?')}") from exc
    except BotoCoreError as exc:
        raise StorageUnavailable(f"S3 unreachable ({type(exc).__name__})") from exc


def _check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key:
        raise ValueError(f"invalid storage key {key!r}")
    return key


class PhotoStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str = "image/jpeg") -> None: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...
    def exists(self, key: str) -> bool: ...
    def delete_prefix(self, prefix: str) -> None: ...


class LocalPhotoStore:
    """Files under one folder; writes are atomic (temp file + rename) so a crash leaves no half photo."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def put(self, key: str, data: bytes, content_type: str = "image/jpeg") -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete_prefix(self, prefix: str) -> None:
        folder = self._path(prefix.rstrip("/"))
        if folder.is_dir():
            for child in sorted(folder.rglob("*"), reverse=True):
                child.unlink() if child.is_file() else child.rmdir()
            folder.rmdir()


class S3PhotoStore:
    """Objects in an S3 bucket under a prefix; boto3 is imported only when this store is used."""

    def __init__(self, url: str, endpoint_url: str | None = None) -> None:
        import boto3

        parsed = urlparse(url)
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.client = boto3.client("s3", endpoint_url=endpoint_url)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{_check_key(key)}" if self.prefix else _check_key(key)

    def put(self, key: str, data: bytes, content_type: str = "image/jpeg") -> None:
        with _s3_answers():
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Body=data,
                ContentType=content_type,
                ServerSideEncryption="AES256",
            )

    def get(self, key: str) -> bytes:
        with _s3_answers(missing_is=FileNotFoundError):
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()

    def delete(self, key: str) -> None:
        with _s3_answers():
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def exists(self, key: str) -> bool:
        """False only when S3 says the object is not there; a refusal (403), an S3 error (5xx) or no connection
        raises StorageUnavailable, so an outage is never taken for a missing photo."""
        try:
            with _s3_answers(missing_is=FileNotFoundError):
                self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except FileNotFoundError:
            return False
        return True

    def delete_prefix(self, prefix: str) -> None:
        with _s3_answers():
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
                keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
                if keys:
                    self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})


def open_store(storage_url: str | None, local_root: Path, endpoint_url: str | None = None) -> PhotoStore:
    """`s3://bucket/prefix` -> S3; unset or `file://...` -> a local folder."""
    if storage_url and storage_url.startswith("s3://"):
        return S3PhotoStore(storage_url, endpoint_url)
    if storage_url and storage_url.startswith("file://"):
        return LocalPhotoStore(Path(urlparse(storage_url).path))
    return LocalPhotoStore(local_root)
