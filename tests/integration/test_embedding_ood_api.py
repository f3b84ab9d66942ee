"""Issue 12 through the API: a photo whose detector embedding is beyond its model's limit is refused 422
`quality_rejected` / `not_skin_photo`, like a gate refusal, and nothing is counted or graded."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from api.main import create_app
from detector.embedding import OOD_FILE, EmbeddingOod
from detector.model_card import ModelCard
from infra.settings import REPO_ROOT, Settings
from tests.integration.test_analyses_api import assert_error, make_key, photo_bytes, upload

SHIPPED = REPO_ROOT / "detector" / "weights"


def model_with_statistics(folder: Path, ood: EmbeddingOod) -> Path:
    """The shipped model (same weights, so the same cached export) with these embedding statistics."""
    folder.mkdir()
    card = ModelCard.load(SHIPPED)
    (folder / card.weights).symlink_to(SHIPPED / card.weights)
    if card.grader:
        shutil.copy2(SHIPPED / card.grader, folder / card.grader)
    ood.save(folder / OOD_FILE)
    replace(card, embedding_ood=OOD_FILE).save(folder)
    return folder


def test_a_far_embedding_is_refused_as_not_skin_photo_and_nothing_is_graded(settings: Settings, tmp_path: Path) -> None:
    dims = 640  # pooled SPPF (512) + P3 neck (128) of the shipped YOLOv8s-P2
    far = EmbeddingOod(np.full(dims, 100.0), np.eye(dims), limit=1.0)  # every real photo lies beyond it
    on = {"embedding_ood_check": True}
    refusing = settings.model_copy(update={"model_dir": model_with_statistics(tmp_path / "far", far), **on})
    with TestClient(create_app(refusing)) as client:
        key = make_key(refusing)
        error = assert_error(upload(client, key, photo_bytes(7)), 422, "quality_rejected")
        assert error["retake_codes"] == ["not_skin_photo"]
        assert error["hints"] == ["This does not look like a close-up of skin. Fill the frame with the affected area."]
        read = client.get(f"/v1/analyses/{error['id']}", headers=key).json()
        assert read["status"] == "rejected" and read["lesion_count"] is None and read["severity"] is None
    wide = EmbeddingOod(np.zeros(dims), np.eye(dims) * 1e-6, limit=1e6)  # the same photo within the limit
    accepting = settings.model_copy(update={"model_dir": model_with_statistics(tmp_path / "wide", wide), **on})
    with TestClient(create_app(accepting)) as client:
        answer = upload(client, make_key(accepting), photo_bytes(7))
        assert answer.status_code == 200, answer.text
