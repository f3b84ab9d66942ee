"""Idempotency keys bound to the request they were first used with.

A key stores a fingerprint of its first request (mode and photo digest). A retry with the same fingerprint gets
the first answer again; a different request under the same key is refused with 422 `idempotency_key_reused`
instead of silently receiving another photo's result. A first use the product refused (a photo the quality gate
rejected) does not lock the key: a different photo under it releases the key from the rejected case. Uploads
refused before any case exists (empty, not an image, too large) never touch the key at all.
"""

from __future__ import annotations

import hashlib

from sqlalchemy.orm import Session

from api.errors import ApiError
from infra.db.models import Case
from infra.db.repositories import cases as cases_repo


def fingerprint(data: bytes, mode: str) -> str:
    """sha256 over the mode and the uploaded bytes."""
    digest = hashlib.sha256(f"{mode}\n".encode())
    digest.update(data)
    return digest.hexdigest()


def reused_error() -> ApiError:
    return ApiError(
        422,
        "idempotency_key_reused",
        "This Idempotency-Key was used for a different request; use a new key for a new photo.",
    )


def find_replay(*, session: Session, api_key_id: str, idempotency_key: str | None, fingerprint: str) -> Case | None:
    """The case to answer with again, None to go ahead, or a 422 for a different request under a used key."""
    if not idempotency_key:
        return None
    case = cases_repo.find_by_idempotency(session=session, api_key_id=api_key_id, idempotency_key=idempotency_key)
    if case is None:
        return None
    if case.request_fingerprint in (None, fingerprint):  # None: stored before fingerprints existed
        return case
    if case.status == "rejected":  # refused first use: the key is free again
        case.idempotency_key = None
        session.flush()
        return None
    raise reused_error()


def check_same_request(case: Case, fingerprint: str) -> None:
    """After a lost insert race the winner's case comes back: only answer with it if it is the same request."""
    if case.request_fingerprint not in (None, fingerprint):
        raise reused_error()
