"""Finishing an asynchronous analysis: the logic behind the `analysis.analyze_case` task."""

from __future__ import annotations

import logging

from infra.db.engine import session_scope
from infra.db.repositories import cases as cases_repo
from pipelines.analysis import analyze, policy_from, record_outcome, thresholds_from
from pipelines.photos import load_stored
from pipelines.runtime import Runtime

log = logging.getLogger(__name__)


def complete_pending_case(case_id: str, runtime: Runtime) -> str:
    """Analyse a pending case; idempotent (a case already completed is left as it is)."""
    settings = runtime.settings
    after: list = []
    with session_scope(settings.sqlalchemy_url, after_commit=after) as session:
        case = cases_repo.get(session=session, case_id=case_id)
        if case is None:
            log.info("case %s no longer exists (deleted); nothing to do", case_id)
            return "missing"
        if case.status != "pending":
            return case.status
        assert case.photo_key is not None
        rgb = load_stored(runtime.store.get(case.photo_key))
        outcome = analyze(
            rgb,
            case_id=case.id,
            detector=runtime.models.get(),
            thresholds=thresholds_from(settings),
            policy=policy_from(settings),
        )
        record_outcome(session=session, case=case, outcome=outcome)
        log.info("case %s analysed: %s", case.id, case.status)  # bench/chaos_soak.py counts these
        if outcome.rejected:
            photo_key = case.photo_key
            case.photo_key = None
            after.append(lambda: runtime.store.delete(photo_key))
        return case.status
