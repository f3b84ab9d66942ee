"""Photo quality gate: measures -> verdict with retake codes and hints the app can show.

Pure: numpy + OpenCV, and onnxruntime for the small lighting, blur and content networks. `assess` is the entry point.
"""

from quality_gate.policy import QualityReport, Thresholds, assess

__all__ = ["QualityReport", "Thresholds", "assess"]
