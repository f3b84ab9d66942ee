"""The one unit of work: a session, one commit, and jobs that run only once that commit succeeded.

Jobs registered with `after_commit` (sending a Celery message, deleting a stored photo) never act on a row
that was not saved: on rollback they are dropped. The API gets one per request (`api.deps.get_uow`), commands,
tasks and scripts one per action (`unit_of_work`, or `session_scope` where only the session matters).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from infra.db.engine import session_factory


@dataclass
class UnitOfWork:
    session: Session
    _after: list[Callable[[], None]] = field(default_factory=list)

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after.append(callback)

    def commit(self) -> None:
        self.session.commit()
        callbacks, self._after = self._after, []
        for callback in callbacks:
            callback()

    def rollback(self) -> None:
        self.session.rollback()
        self._after.clear()


@contextmanager
def unit_of_work(url: str, *, commit_on_exit: bool = True) -> Iterator[UnitOfWork]:
    """Roll back on error. `commit_on_exit=False` (the API) leaves committing to the caller: what it did not
    commit is rolled back when the block ends."""
    uow = UnitOfWork(session=session_factory(url)())
    try:
        yield uow
        if commit_on_exit:
            uow.commit()
    finally:
        uow.rollback()  # drops what was not committed (an error, or a caller that chose not to) and its jobs
        uow.session.close()


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A unit of work for callers that only need its session: commit once at the end, roll back on error."""
    with unit_of_work(url) as uow:
        yield uow.session
