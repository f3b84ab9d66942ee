"""The gate's small networks on onnxruntime: one session per graph and process, loaded on first use."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=4)
def onnx_session(path: Path):
    """A session on one thread: the gate runs beside the detector, which has the other cores."""
    import onnxruntime as ort  # lazily: importing the gate must not load a runtime

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
