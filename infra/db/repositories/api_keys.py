"""API keys: stored as SHA-256 digests, looked up by digest."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from infra.db.models import ApiKey, new_id, utcnow


def hash_key(raw_key: str) -> str:
    """Keys are long random tokens, so a plain SHA-256 is enough (no dictionary to guess from)."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


def create_key(*, session: Session, role: str, name: str, person_id: str | None = None) -> tuple[ApiKey, str]:
    """Create a key and return it with the raw token, which is shown once and never stored.

    `person_id`: the person the key belongs to (a rotation gives the same person a new key); a new person else."""
    raw = f"st_{secrets.token_urlsafe(32)}"
    key_id = new_id()
    key = ApiKey(
        id=key_id, name=name, role=role, key_hash=hash_key(raw), prefix=raw[:10], person_id=person_id or key_id
    )
    session.add(key)
    session.flush()
    return key, raw


def find_active(*, session: Session, raw_key: str) -> ApiKey | None:
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(raw_key)))
    if key is None or key.revoked_at is not None:
        return None
    return key


def list_keys(*, session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at)))


def revoke_by_prefix(*, session: Session, prefix: str) -> ApiKey:
    """Revoke the one active key shown as `prefix` in `keys list`; refuses an unknown or ambiguous prefix so a
    rotation never locks out the wrong client."""
    matches = list(session.scalars(select(ApiKey).where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))))
    if len(matches) != 1:
        raise LookupError(f"{len(matches)} active keys have the prefix {prefix!r}; expected exactly one")
    matches[0].revoked_at = utcnow()
    session.flush()
    return matches[0]


def person_of(*, session: Session, prefix: str) -> tuple[str, str]:
    """(person id, role) of the key shown as `prefix`, to give the same person a new key (rotation)."""
    matches = list(session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)))
    if len(matches) != 1:
        raise LookupError(f"{len(matches)} keys have the prefix {prefix!r}; expected exactly one")
    return matches[0].person_id or matches[0].id, matches[0].role
