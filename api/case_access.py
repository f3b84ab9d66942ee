"""Who may see a case, and the audit trail of who did.

Apps see their own cases. Dermatologists see a case only if it is or was in review (it has a review row or was
routed to review), never every analysis. Every read of a case's details, photo or overlay by a dermatologist
writes an audit entry (`case.read`, with what was read and the person behind the key), committed with the read.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from api.deps import Principal, UnitOfWork
from infra.db.models import Case, ReviewItem
from infra.db.repositories import audit

AUDITED_ROLES = frozenset({"dermatologist"})


def visible_to(*, session: Session, principal: Principal, case: Case) -> bool:
    if principal.role == "app":
        return case.api_key_id == principal.key_id
    if principal.role == "dermatologist":
        return bool(case.review_queued) or session.get(ReviewItem, case.id) is not None
    return False


def record_read(*, uow: UnitOfWork, principal: Principal, case_id: str, what: str) -> None:
    """Audit a read of case data by a reviewer and commit it (reads by the case's own app are not logged)."""
    if principal.role not in AUDITED_ROLES:
        return
    audit.record(
        session=uow.session,
        action="case.read",
        actor=principal.actor,
        target=case_id,
        details={"what": what, "person": principal.person_id},
    )
    uow.commit()
