"""The review page in a real headless Chromium: log in, claim, move/resize/add boxes, grade, submit."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import select

from api.main import create_app
from infra.db.engine import session_scope
from infra.db.models import Case, Label, ReviewItem
from infra.db.repositories import api_keys
from infra.db.repositories import review as review_repo
from infra.settings import REPO_ROOT, Settings
from infra.storage import open_store
from tests.conftest import IN_CI, encode, free_port, skin_photo

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = REPO_ROOT / "var" / "screenshots" / "review_page.png"
W, H = 640, 480
FINDINGS = [
    {"label": "lesion", "confidence": 0.42, "box": [100.0, 100.0, 130.0, 128.0]},
    {"label": "lesion", "confidence": 0.31, "box": [300.0, 200.0, 320.0, 222.0]},
]

pytestmark = pytest.mark.slow


@pytest.fixture
def base_url(settings: Settings) -> Iterator[str]:
    """The API with the review page, served by uvicorn in a thread on a free port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _seed(settings: Settings) -> tuple[str, str]:
    store = open_store(settings.storage_url, settings.photos_dir, settings.s3_endpoint_url)
    with session_scope(settings.sqlalchemy_url) as session:
        _, raw = api_keys.create_key(session=session, role="dermatologist", name="browser")
        case = Case(
            status="done",
            width=W,
            height=H,
            findings=FINDINGS,
            lesion_count=2,
            grade=0,
            model_version="test-model-1",
            review_queued=True,
            review_reason="uncertain_findings,near_grade_boundary",
        )
        session.add(case)
        session.flush()
        case.photo_key = f"cases/{case.id}/photo.jpg"
        store.put(case.photo_key, encode(skin_photo(W, H, seed=3, spots=12)))
        review_repo.enqueue(
            session=session, case_id=case.id, reason=case.review_reason or "", priority=1.5, reviews_required=1
        )
        return case.id, raw


@pytest.fixture
def browser_page() -> Iterator[object]:
    if not CHROMIUM.exists():
        if IN_CI:
            pytest.fail("/usr/bin/chromium is missing (run `make browser`)")
        pytest.skip("/usr/bin/chromium is missing (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        yield page
        browser.close()


def test_review_page_corrects_boxes_and_submits(settings: Settings, base_url: str, browser_page) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    case_id, raw_key = _seed(settings)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(f"{base_url}/review")
    page.fill("#key", raw_key)
    page.click("#save-key")
    assert page.evaluate("sessionStorage.getItem('skintrouble.reviewKey')") == raw_key
    page.keyboard.press("n")
    page.wait_for_selector("body[data-state='ready']", timeout=10_000)
    assert page.evaluate("skintroubleReview.caseId()") == case_id
    assert page.evaluate("skintroubleReview.boxes()") == [{"label": f["label"], "box": f["box"]} for f in FINDINGS]

    canvas = page.locator("#canvas").bounding_box()
    view = page.evaluate("skintroubleReview.view()")

    def screen(x: float, y: float) -> tuple[float, float]:
        return canvas["x"] + view["ox"] + x * view["scale"], canvas["y"] + view["oy"] + y * view["scale"]

    def drag(start: tuple[float, float], end: tuple[float, float]) -> None:
        page.mouse.move(*screen(*start))
        page.mouse.down()
        page.mouse.move(*screen(*end), steps=8)
        page.mouse.up()

    drag((115, 114), (135, 124))  # move box 0 by (+20, +10)
    page.mouse.click(*screen(310, 211))  # select box 1 ...
    drag((320, 222), (332, 240))  # ... and pull its bottom-right corner by (+12, +18)
    drag((450, 300), (490, 340))  # a new box on empty skin
    page.keyboard.press("2")  # grade
    assert page.evaluate("skintroubleReview.touched()") is True
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))

    page.keyboard.press("s")
    page.wait_for_selector("#status:has-text('Saved as')", timeout=10_000)  # the page's CSP forbids eval'd waits
    assert "corrected" in page.text_content("#status")
    assert errors == []

    with session_scope(settings.sqlalchemy_url) as session:
        (label,) = session.scalars(select(Label).where(Label.case_id == case_id)).all()
        assert (label.verdict, label.grade, label.model_version) == ("corrected", 2, "test-model-1")
        assert session.get(ReviewItem, case_id).status == "done"
        boxes = label.boxes
    assert [b["label"] for b in boxes] == ["lesion"] * 3
    expected = [[120, 110, 150, 138], [300, 200, 332, 240], [450, 300, 490, 340]]
    tolerance = 1.5 / view["scale"] + 0.2  # one screen pixel either way, plus rounding
    for got, want in zip(boxes, expected, strict=True):
        assert got["box"] == pytest.approx(want, abs=tolerance), (got, want)
    assert os.path.getsize(SCREENSHOT) > 10_000
