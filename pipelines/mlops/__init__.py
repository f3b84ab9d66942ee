"""Data and models: from reviewed labels to the release that serving follows.

`datasets` (snapshots by id), `erasure` (copies of erased photos), `retraining`, `registry` (MLflow versions and
aliases), `benchmark` and `promotion` (the gate on a frozen benchmark), `release_follower` and `model_provider`
(which model a process serves, swapped without restart), `monitoring` (drift signals). May import detector,
infra, `pipelines.tasks.app` (to enqueue, lazily) and `pipelines.cases.photos` (stored photos as sRGB training
images); not the rest of cases, nor review.
"""
