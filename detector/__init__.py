"""Small-object acne lesion detector: inference, grading, datasets, training and evaluation.

Pure: importable without FastAPI, Celery or a database. Torch and Ultralytics are imported
lazily, only by the training/export paths, so the serving process stays on onnxruntime.
"""
