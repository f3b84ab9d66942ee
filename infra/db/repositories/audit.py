"""The audit trail: who did what to which case, model or run, whichever face (API, CLI, beat) they used."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from infra.db.models import AuditEvent


@dataclass(frozen=True)
class Actor:
    """Who acts: an API key's holder (`id` is the key id), an operator at the command line, or the system."""

    id: str | None
    role: str
    name: str

    @classmethod
    def operator(cls) -> Actor:
        """The person running a CLI command on the host: audited under their OS login, role `operator`."""
        user = getpass.getuser()
        return cls(id=f"cli:{user}", role="operator", name=user)


SYSTEM = Actor(id=None, role="system", name="system")


def record(
    *, session: Session, action: str, actor: Actor, target: str | None, details: dict[str, Any] | None = None
) -> None:
    """Add an entry to the caller's transaction: it is saved with the action it describes, or not at all."""
    session.add(AuditEvent(action=action, actor_id=actor.id, role=actor.role, target=target, details=details or {}))
