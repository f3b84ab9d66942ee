"""The mobile app's room: upload a photo (sync or async), read the analysis, its overlay, delete it.

Routes map HTTP to `pipelines.cases.lifecycle` and back; they hold no analysis logic. May import pipelines and infra.
"""
