"""The life of one case: uploaded bytes -> sanitised JPEG -> quality gate -> detector -> review routing -> record.

`lifecycle` is the one order every entry point follows (API sync and async routes, the Celery task); `analysis`
is the analysis itself; `photos` decodes and sanitises; `routing` decides who must look; `inference_pool` bounds
concurrent analyses; `stale` re-sends lost messages. May import detector, quality_gate, infra and
`pipelines.resources`; not review, mlops or tasks.
"""
