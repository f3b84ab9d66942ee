"""Orchestration: photo decoding, the analysis service, review routing, Celery tasks, retraining, registry."""
