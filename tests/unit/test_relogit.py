"""bench/relogit.py: a cache's lighting logits recomputed through a graph, as the gate computes them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import bench.gate_measure as gm
from bench import relogit
from quality_gate import lighting_cnn
from quality_gate.policy import Thresholds, image_measures
from tests.conftest import skin_photo


def test_lighting_logits_come_back_as_the_gate_measured_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the shipped graph every cached lighting logit comes back (a photo without skin keeps the gate's 0.0, and
    a photo inside a uniform frame is read inside it); a cache measured otherwise fails the check."""
    framed = np.pad(skin_photo(480, 640, seed=3), ((60, 60), (80, 80), (0, 0)))  # black frame: trimmed first
    blank = np.full((480, 640, 3), (40, 90, 200), np.uint8)  # blue: no skin
    images = [("valid", "report", f"p{k}", "good", None, image) for k, image in enumerate((framed, blank))]
    monkeypatch.setattr(gm, "set_images", lambda set_: iter(images))
    t = Thresholds()
    rows = [{**dict(zip(("set", "part", "photo", "kind", "label"), image[:5], strict=True)),
             "measures": image_measures(image[5], t)} for image in images]  # fmt: skip
    assert rows[1]["measures"]["lighting_logit"] == 0.0 and rows[0]["measures"]["lighting_logit"] != 0.0
    cache, out = tmp_path / "m.json", tmp_path / "out.json"
    cache.write_text(json.dumps(rows))
    relogit.relogit(cache, "lighting_logit", lighting_cnn.MODEL_PATH, out, check=True)
    assert json.loads(out.read_text()) == json.loads(cache.read_text())
    rows[0]["measures"]["lighting_logit"] += 2.0
    cache.write_text(json.dumps(rows))
    with pytest.raises(SystemExit, match="disagree"):
        relogit.relogit(cache, "lighting_logit", lighting_cnn.MODEL_PATH, None, check=True)


def test_a_cache_of_other_rows_stops_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    image = skin_photo(480, 640, seed=1)
    monkeypatch.setattr(gm, "set_images", lambda set_: iter([("valid", "report", "other", "good", None, image)]))
    rows = [{"set": "valid", "part": "report", "photo": "p0", "kind": "good", "label": None, "measures": {}}]
    with pytest.raises(SystemExit, match="does not hold"):
        relogit.relogit_rows(rows, "content_logit", relogit.GRAPHS["content_logit"])
