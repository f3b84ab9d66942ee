"""Review queue rows and leases: enqueue, claim (never the same case to two reviewers at once), release, expire."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Select, delete, exists, func, select, text
from sqlalchemy.orm import Session

from infra.db.models import Label, ReviewItem, ReviewLease

MAX_CLAIM_ATTEMPTS = 20


def enqueue(*, session: Session, case_id: str, reason: str, priority: float, reviews_required: int) -> ReviewItem:
    """Idempotent: a case already queued keeps its row."""
    item = session.get(ReviewItem, case_id)
    if item is None:
        item = ReviewItem(case_id=case_id, reason=reason, priority=priority, reviews_required=reviews_required)
        session.add(item)
        session.flush()
    return item


def get_item(*, session: Session, case_id: str) -> ReviewItem | None:
    return session.get(ReviewItem, case_id)


def get_item_for_update(*, session: Session, case_id: str) -> ReviewItem | None:
    """The item, locked until commit (row lock on PostgreSQL, database write lock on SQLite)."""
    lock_writes_on_sqlite(session)
    return session.scalar(
        select(ReviewItem)
        .where(ReviewItem.case_id == case_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _active_leases(case_id: object, now: datetime) -> Select[tuple[int]]:
    """Count of leases on a case that are held right now (not released, not expired)."""
    return (
        select(func.count())
        .select_from(ReviewLease)
        .where(ReviewLease.case_id == case_id, ReviewLease.released.is_(False), ReviewLease.expires_at > now)
    )


def lock_writes_on_sqlite(session: Session) -> None:
    """SQLite has no row locks: a first no-op UPDATE takes the database write lock until commit, so the
    check-then-lease below runs alone (other claimers wait on busy_timeout, then see our lease)."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("UPDATE review_items SET status = status WHERE 1 = 0"))


def open_slots(*, session: Session, case_id: str, now: datetime) -> int:
    """Reviews still to hand out: required minus done minus leases currently held."""
    item = session.get(ReviewItem, case_id, populate_existing=True)
    if item is None or item.status != "queued":
        return 0
    held = session.scalar(_active_leases(case_id, now)) or 0
    return item.reviews_required - item.reviews_done - held


def claim(*, session: Session, reviewer_id: str, now: datetime, expires_at: datetime) -> ReviewItem | None:
    """Lease the most urgent case this reviewer may take (priority desc, then oldest), or None.

    A reviewer holding a lease gets that case back (renewed); otherwise never a case they already labelled or
    skipped (a released lease), and a case is handed out only while reviews are still needed. PostgreSQL: the candidate row is locked with FOR UPDATE SKIP
    LOCKED and its free slots re-counted under that lock (every claimer of that case needs the same lock).
    SQLite: the whole claim runs under the database write lock.
    """
    lock_writes_on_sqlite(session)
    held = session.scalar(
        select(ReviewItem)
        .join(ReviewLease, ReviewLease.case_id == ReviewItem.case_id)
        .where(
            ReviewLease.reviewer_id == reviewer_id,
            ReviewLease.released.is_(False),
            ReviewLease.expires_at > now,
            ReviewItem.status == "queued",
        )
        .order_by(ReviewItem.priority.desc(), ReviewItem.created_at)
        .limit(1)
    )
    if held is not None:  # a reload of the page resumes the case in hand instead of leasing another
        _take_lease(session=session, case_id=held.case_id, reviewer_id=reviewer_id, now=now, expires_at=expires_at)
        return held
    own_done = exists().where(
        Label.case_id == ReviewItem.case_id,
        Label.reviewer_id == reviewer_id,
    )
    own_released = exists().where(
        ReviewLease.case_id == ReviewItem.case_id,
        ReviewLease.reviewer_id == reviewer_id,
        ReviewLease.released.is_(True),
    )
    tried: list[str] = []
    wait = False
    for _ in range(MAX_CLAIM_ATTEMPTS):
        query = (
            select(ReviewItem)
            .where(
                ReviewItem.status == "queued",
                ReviewItem.reviews_done + _active_leases(ReviewItem.case_id, now).scalar_subquery()
                < ReviewItem.reviews_required,
                ~own_done,
                ~own_released,
            )
            .order_by(ReviewItem.priority.desc(), ReviewItem.created_at, ReviewItem.case_id)
            .limit(1)
            .with_for_update(skip_locked=not wait, of=ReviewItem)
        )
        if tried:
            query = query.where(ReviewItem.case_id.not_in(tried))
        item = session.scalar(query)
        if item is None:
            if wait or tried:
                return None
            # every eligible row is being claimed by someone else right now (PostgreSQL): wait for one, holding
            # no lock ourselves, so a double-review case still gives its second slot instead of a spurious 204
            wait = True
            continue
        wait = False
        if open_slots(session=session, case_id=item.case_id, now=now) > 0:
            _take_lease(session=session, case_id=item.case_id, reviewer_id=reviewer_id, now=now, expires_at=expires_at)
            return item
        tried.append(item.case_id)
    return None


def _take_lease(*, session: Session, case_id: str, reviewer_id: str, now: datetime, expires_at: datetime) -> None:
    lease = find_lease(session=session, case_id=case_id, reviewer_id=reviewer_id)
    if lease is None:
        session.add(ReviewLease(case_id=case_id, reviewer_id=reviewer_id, claimed_at=now, expires_at=expires_at))
    else:  # the reviewer's own lease had expired: renew it
        lease.claimed_at, lease.expires_at, lease.released = now, expires_at, False
    session.flush()


def find_lease(*, session: Session, case_id: str, reviewer_id: str) -> ReviewLease | None:
    return session.scalar(
        select(ReviewLease).where(ReviewLease.case_id == case_id, ReviewLease.reviewer_id == reviewer_id)
    )


def held_lease(*, session: Session, case_id: str, reviewer_id: str, now: datetime) -> ReviewLease | None:
    lease = find_lease(session=session, case_id=case_id, reviewer_id=reviewer_id)
    if lease is None or lease.released or _aware(lease.expires_at) <= now:
        return None
    return lease


def release(*, session: Session, lease: ReviewLease) -> None:
    """A released lease also keeps the case away from this reviewer (skipped or already labelled)."""
    lease.released = True
    session.flush()


def expire_leases(*, session: Session, now: datetime) -> list[tuple[str, str]]:
    """Delete leases past their expiry so the case returns to the queue; returns (case_id, reviewer_id) pairs.

    Claims already ignore expired leases; this only tidies the table and lets the reviewer claim it again.
    """
    where = (ReviewLease.released.is_(False), ReviewLease.expires_at <= now)
    expired = [(c, r) for c, r in session.execute(select(ReviewLease.case_id, ReviewLease.reviewer_id).where(*where))]
    if expired:
        session.execute(delete(ReviewLease).where(*where))
    return expired


def record_review(*, session: Session, item: ReviewItem, reviews_required: int, done: bool) -> None:
    item.reviews_done += 1
    item.reviews_required = reviews_required
    item.status = "done" if done else "queued"
    session.flush()


def queue_sizes(*, session: Session, now: datetime) -> dict[str, int]:
    """How many items wait for a first, a further (second/third) review, are leased now, or are done."""
    counts = {"waiting_first_review": 0, "waiting_more_reviews": 0, "done": 0}
    grouped = session.execute(
        select(ReviewItem.status, ReviewItem.reviews_done > 0, func.count()).group_by(
            ReviewItem.status, ReviewItem.reviews_done > 0
        )
    )
    for status, started, n in grouped:
        if status == "done":
            counts["done"] += n
        elif started:
            counts["waiting_more_reviews"] += n
        else:
            counts["waiting_first_review"] += n
    counts["leased_now"] = (
        session.scalar(
            select(func.count())
            .select_from(ReviewLease)
            .where(ReviewLease.released.is_(False), ReviewLease.expires_at > now)
        )
        or 0
    )
    return counts


def _aware(moment: datetime) -> datetime:
    """SQLite hands datetimes back without a zone; they were stored in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def reopen(*, session: Session, item: ReviewItem, reason: str, priority: float) -> None:
    """Ask for one more review of a finished case (a second look): queued again, one more review required, the
    reason put first. Reviewers who already labelled it are never offered it again (see `claim`)."""
    item.status = "queued"
    item.reviews_required = item.reviews_done + 1
    item.reason = reason if not item.reason else f"{reason},{item.reason}"
    item.priority = max(item.priority, priority)
    session.flush()
