"""The `skintrouble` command line, run as a user would: a real process, real files, JSON lines out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.settings import REPO_ROOT
from tests.conftest import encode, skin_photo

pytestmark = pytest.mark.slow


def run_cli(*args: str, var: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SKINTROUBLE_VAR_DIR": str(var),
        "SKINTROUBLE_MODEL_CACHE": str(REPO_ROOT / "var" / "cache" / "models"),
    }
    for name in ("DATABASE_URL", "REDIS_URL", "MLFLOW_TRACKING_URI"):
        env.pop(name, None)
    proc = subprocess.run(
        [sys.executable, "-m", "api.cli", *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=240
    )
    if check:
        assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("photos")
    good = skin_photo(800, 600, seed=3)
    paths = {
        "good": folder / "good.jpg",
        "dark": folder / "dark.jpg",
        "text": folder / "notes.jpg",
    }
    paths["good"].write_bytes(encode(good))
    paths["dark"].write_bytes(encode((good * 0.08).astype("uint8")))
    paths["text"].write_text("not a photo")
    return paths


def test_keys_create_prints_the_key_alone_on_the_last_line(tmp_path: Path) -> None:
    proc = run_cli("keys", "create", "--role", "dermatologist", "--name", "dr-a", var=tmp_path)
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("st_") and " " not in last and len(last) > 30
    listing = run_cli("keys", "list", var=tmp_path).stdout
    assert "dermatologist" in listing and last not in listing  # only the prefix is ever shown again


def test_keys_create_refuses_an_unknown_role(tmp_path: Path) -> None:
    proc = run_cli("keys", "create", "--role", "admin", var=tmp_path, check=False)
    assert proc.returncode == 2


def test_check_quality_json_lines(tmp_path: Path, photos: dict[str, Path]) -> None:
    proc = run_cli("check-quality", "--json", str(photos["good"]), str(photos["dark"]), var=tmp_path)
    lines = [json.loads(line) for line in proc.stdout.strip().splitlines()]
    assert [line["image"] for line in lines] == [str(photos["good"]), str(photos["dark"])]
    assert lines[0]["accepted"] is True and lines[0]["retake_codes"] == []
    assert lines[1]["accepted"] is False and "too_dark" in lines[1]["retake_codes"]
    assert set(lines[0]) == {"image", "accepted", "retake_codes", "measures"}
    # issue 12's measures are reported too: direction of blur, lighting in stops, distance to the training photos
    reported = set(lines[0]["measures"])
    assert {
        "motion_ratio",
        "motion_ratio_full",
        "detail_half_max",
        "blur_angle",
        "skin_exposure",
        "light_gradient",
        "ood_distance",
    } <= reported
    assert {"light_slope", "colour_detail", "fine_coherence", "oriented_detail"} <= reported  # the second round
    assert {"deep_shadow", "light_q10", "shadowed_2", "lighting_logit"} <= reported  # the lighting rounds
    assert "blur_logit" in reported  # the blur network


def test_predict_json_lines_and_conf_only_changes_the_listing(tmp_path: Path, photos: dict[str, Path]) -> None:
    operating = run_cli("predict", "--json", str(photos["good"]), var=tmp_path)
    low = run_cli("predict", "--json", "--conf", "0.01", str(photos["good"]), var=tmp_path)
    a, b = json.loads(operating.stdout.strip().splitlines()[-1]), json.loads(low.stdout.strip().splitlines()[-1])
    for line in (a, b):
        assert {"image", "quality", "findings", "lesion_count", "severity", "model_version"} <= set(line)
        assert line["image"] == str(photos["good"])
        assert 0 <= line["severity"]["grade"] <= 3
        for finding in line["findings"]:
            assert set(finding) == {"label", "confidence", "box"} and len(finding["box"]) == 4
    assert len(b["findings"]) >= len(a["findings"])
    assert min((f["confidence"] for f in b["findings"]), default=0.0) >= 0.01
    assert a["lesion_count"] == b["lesion_count"] and a["severity"] == b["severity"]


def test_predict_reports_rejections_and_bad_files_without_a_traceback(tmp_path: Path, photos: dict[str, Path]) -> None:
    proc = run_cli("predict", "--json", str(photos["dark"]), str(photos["text"]), var=tmp_path, check=False)
    assert proc.returncode == 1  # one file could not be read
    dark, text = (json.loads(line) for line in proc.stdout.strip().splitlines())
    assert dark["quality"]["accepted"] is False and dark["findings"] == []
    assert text["error"]["code"] == "unsupported_media_type"
    assert "Traceback" not in proc.stderr
    skipped = run_cli("predict", "--json", "--skip-quality-gate", str(photos["dark"]), var=tmp_path)
    assert json.loads(skipped.stdout.strip().splitlines()[-1])["severity"] is not None
