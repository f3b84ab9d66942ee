"""The one vocabulary the rest of the product speaks about detections."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class Finding:
    """One lesion: label, confidence and box (x1, y1, x2, y2) in the original photo's pixels."""

    label: str
    confidence: float
    box: Box

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "confidence": round(float(self.confidence), 4),
            "box": [round(float(v), 1) for v in self.box],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        x1, y1, x2, y2 = (float(v) for v in data["box"])
        return cls(label=str(data["label"]), confidence=float(data.get("confidence", 1.0)), box=(x1, y1, x2, y2))


@dataclass(frozen=True, slots=True)
class Severity:
    """Clinical severity grade 0-3 and its label.

    Graded by the model's grader (`detector.grader`) when it has one: then `probabilities` (four numbers
    summing to 1, grades 0..3), `count_interval` (low, high lesion count) and `score` (expected grade,
    0..3) are set. A model without a grader grades by count bands and leaves them None.
    """

    grade: int
    label: str
    probabilities: tuple[float, ...] | None = None
    count_interval: tuple[int, int] | None = None
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("probabilities", "count_interval"):
            if data[key] is not None:
                data[key] = list(data[key])
        return {k: v for k, v in data.items() if v is not None}


@dataclass(frozen=True, slots=True)
class Detection:
    """What the detector says about one photo.

    `findings` are those at or above the requested confidence; `lesion_count` and `severity`
    always use the model's operating threshold so that `--conf` never changes the grade.
    """

    findings: list[Finding]
    lesion_count: int
    severity: Severity
    uncertainty: float
    model_version: str
    operating_conf: float
    extras: dict[str, Any] = field(default_factory=dict)
    # The grader's raw evidence (`detector.grader.Evidence`), for refitting; never serialised.
    evidence: Any = field(default=None, compare=False, repr=False)

    def scaled(self, sx: float, sy: float) -> Detection:
        """The same detection with boxes multiplied by (sx, sy): from a reduced decode to the photo's pixels."""
        if sx == 1.0 and sy == 1.0:
            return self
        findings = [
            Finding(f.label, f.confidence, (f.box[0] * sx, f.box[1] * sy, f.box[2] * sx, f.box[3] * sy))
            for f in self.findings
        ]
        extras = dict(self.extras)
        if "crop" in extras:
            x0, y0, x1, y1 = extras["crop"]
            extras["crop"] = [round(x0 * sx), round(y0 * sy), round(x1 * sx), round(y1 * sy)]
        if extras.get("skin_extent") is not None:
            extras["skin_extent"] = round(extras["skin_extent"] * max(sx, sy), 1)
        return replace(self, findings=findings, extras=extras)
