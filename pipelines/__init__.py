"""Orchestration between the pure libraries (`detector`, `quality_gate`) and the outside world (`infra`).

Four rooms, one per stage of the product loop:

- `cases`: the life of one uploaded photo: decode and sanitise (`photos`), gate, detect and route (`analysis`,
  `routing`), one lifecycle for every entry point (`lifecycle`), the bound on concurrent analyses
  (`inference_pool`) and the safety net for lost messages (`stale`).
- `review`: what dermatologists produce: agreement and reliability, suspect labels and second looks, the
  missed-lesion sweep, label exports.
- `mlops`: data and models: dataset snapshots, erasure of copies, retraining, the MLflow registry, the frozen
  benchmark, promotion, which release serving follows, drift monitoring.
- `tasks`: the Celery app and its thin tasks, which call the three rooms above.

`resources` holds the process-wide collaborators (settings, photo store, model provider, inference pool).
May import detector, quality_gate and infra; never api.
"""
