"""Phone photos through the API: a full inference pool answers 503 `busy` with Retry-After at once, the same
upload gets the same findings synchronously and asynchronously (one lifecycle, the same stored pixels), and a
wide-gamut (Display P3) photo is judged as the scene it shows."""

from __future__ import annotations

import threading
import time

import cv2
import pytest

from bench import gate_data as gd
from infra.db.repositories import cases as cases_repo
from infra.db.unit_of_work import session_scope
from infra.settings import Settings
from pipelines.cases.lifecycle import complete_pending_case
from tests.conftest import encode, skin_photo
from tests.integration.test_analyses_api import assert_error, make_key, running, upload


def test_a_full_pool_answers_busy_with_retry_after(settings: Settings) -> None:
    tight = settings.model_copy(update={"inference_slots": 1, "busy_wait_seconds": 0.3})
    with running(tight) as client:
        headers = make_key(tight)
        pool = client.app.state.resources.pool
        assert pool.slots == 1
        held, release = threading.Event(), threading.Event()

        def occupy() -> None:
            with pool.slot(None):
                held.set()
                release.wait(30)

        worker = threading.Thread(target=occupy)
        worker.start()
        try:
            assert held.wait(10)
            started = time.monotonic()
            response = upload(client, headers, encode(skin_photo(640, 480, seed=1)))
            waited = time.monotonic() - started
        finally:
            release.set()
            worker.join()
        error = assert_error(response, 503, "busy")
        assert int(response.headers["Retry-After"]) >= 1 and error["retry_after"] >= 1
        assert waited < 5  # refused after the bounded wait, not after a queue of analyses
        assert upload(client, headers, encode(skin_photo(640, 480, seed=1))).status_code == 200  # slot free again


def test_the_same_upload_gets_the_same_findings_sync_and_async(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Async: the API stores the photo and a pending case; the task's logic (what the worker runs) completes it."""
    sent: list[str] = []
    monkeypatch.setattr("api.analyses.service.enqueue_task", lambda _name, case_id: sent.append(case_id))
    big = cv2.resize(skin_photo(640, 480, seed=7, spots=30), (2560, 1920), interpolation=cv2.INTER_CUBIC)
    data = encode(big, quality=93)
    with running(settings) as client:
        headers = make_key(settings)
        sync = upload(client, headers, data)
        assert sync.status_code == 200, sync.text
        accepted = upload(client, headers, data, params={"mode": "async"})
        assert accepted.status_code == 202 and sent == [accepted.json()["id"]]
        resources = client.app.state.resources
        assert complete_pending_case(sent[0], resources) == "done"
        done = client.get(f"/v1/analyses/{sent[0]}", headers=headers).json()
    first = sync.json()
    assert first["findings"], "the synthetic spots should give findings to compare"
    assert (first["width"], first["height"]) == (done["width"], done["height"]) == (2560, 1920)
    assert done["findings"] == first["findings"] and done["lesion_count"] == first["lesion_count"]
    assert done["severity"] == first["severity"]
    with session_scope(settings.sqlalchemy_url) as session:
        case = cases_repo.get(session=session, case_id=sent[0])
        assert case is not None and case.photo_key is not None


def test_a_wide_gamut_phone_photo_is_judged_as_the_scene_it_shows(settings: Settings) -> None:
    """An iPhone records Display P3 and tags its JPEG; the service reads it through the profile, so the gate's colour
    measures and the findings are those of the same scene sent as sRGB, not of its duller untagged values."""
    scene = cv2.resize(skin_photo(640, 480, seed=7, spots=30), (2560, 1920), interpolation=cv2.INTER_CUBIC)
    p3_values = gd.as_display_p3(scene)
    with running(settings) as client:
        headers = make_key(settings)
        answers = {
            name: upload(client, headers, data).json()
            for name, data in {
                "srgb": encode(scene, quality=95),
                "p3 tagged": gd.tagged_jpeg(p3_values, gd.display_p3_profile()),
                "p3 untagged": encode(p3_values, quality=95),
            }.items()
        }
    redness = {name: answer["quality"]["measures"]["skin_red_green"] for name, answer in answers.items()}
    assert abs(redness["p3 tagged"] - redness["srgb"]) < 0.5
    assert redness["p3 untagged"] < redness["srgb"] - 2.0  # what a service blind to the profile would have judged
    # the grade's probabilities move with the colour the detector sees; the profile brings them back beside sRGB's
    probabilities = {name: answer["severity"]["probabilities"] for name, answer in answers.items()}
    moved = {
        name: sum(abs(a - b) for a, b in zip(p, probabilities["srgb"], strict=True))
        for name, p in probabilities.items()
    }
    assert moved["p3 tagged"] < 0.5 * moved["p3 untagged"]
    assert abs(answers["p3 tagged"]["lesion_count"] - answers["srgb"]["lesion_count"]) <= 1
