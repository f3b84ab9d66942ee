"""Orchestration between the pure libraries (`detector`, `quality_gate`) and the outside world (`infra`).

What lives here: the case lifecycle (`case_lifecycle`: sanitise, store, gate, detect, route, record), photo
decoding (`photos`), the analysis itself (`analysis`), the inference pool, review routing, agreement, suspects and
exports, Celery (`celery_app`, thin `tasks/`), retraining, the MLflow registry, promotion and the release follower.
May import detector, quality_gate and infra; never api.
"""
