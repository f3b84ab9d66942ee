"""Safety net for lost analysis messages: re-send cases that stayed pending too long.

The SQLite transport drops a message whose worker was killed before acking it, and even Redis redelivers
only after its visibility timeout. Analysing a case is idempotent, so sending it twice is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from infra.db.repositories import cases as cases_repo
from infra.db.unit_of_work import session_scope

log = logging.getLogger(__name__)


def requeue_stale(
    *, database_url: str, older_than_seconds: float, send: Callable[[str], None], now: datetime | None = None
) -> list[str]:
    """Send every case pending for longer than `older_than_seconds` to the workers again; returns their ids."""
    before = (now or datetime.now(UTC)) - timedelta(seconds=older_than_seconds)
    with session_scope(database_url) as session:
        stale = cases_repo.pending_before(session=session, before=before)
    for case_id in stale:
        send(case_id)
    if stale:
        log.warning("re-sent %d stale pending case(s)", len(stale))
    return stale
