"""The review page in a real headless Chromium: the key checked at login, boxes moved/resized/added with the
mouse, touch and pen (pointer events), lesion types from the taxonomy, a grade never pre-selected, the unsaved-edit
guard, undo/redo, brightness/contrast/gamma, hidden pre-labels and confidences, the heatmap layer, reliability."""

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
from infra.db.models import Case, Label, ReviewItem
from infra.db.repositories import api_keys
from infra.db.repositories import review as review_repo
from infra.db.unit_of_work import session_scope
from infra.settings import REPO_ROOT, Settings
from tests.conftest import IN_CI, free_port
from tests.review_cases import queued_case

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = REPO_ROOT / "var" / "screenshots"
SCREENSHOT = SHOTS / "review_page.png"
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


def _seed(settings: Settings, name: str = "browser", findings: list[dict] | None = None) -> tuple[str, str]:
    with session_scope(settings.sqlalchemy_url) as session:
        _, raw = api_keys.create_key(session=session, role="dermatologist", name=name)
    case_id = queued_case(
        settings,
        size=(W, H),
        findings=FINDINGS if findings is None else findings,
        grade=0,
        reason="uncertain_findings,near_grade_boundary",
        priority=1.5,
        photo={"seed": 3, "spots": 12},
    )
    return case_id, raw


def _launch(playwright, **context: object):  # type: ignore[no-untyped-def]
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
    return browser, browser.new_context(viewport={"width": 1280, "height": 860}, **context).new_page()


@pytest.fixture
def playwright_session() -> Iterator[object]:
    if not CHROMIUM.exists():
        if IN_CI:
            pytest.fail("/usr/bin/chromium is missing (run `make browser`)")
        pytest.skip("/usr/bin/chromium is missing (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture
def browser_page(playwright_session) -> Iterator[object]:  # type: ignore[no-untyped-def]
    browser, page = _launch(playwright_session)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    browser.close()
    assert errors == []


def log_in_and_claim(page, base_url: str, raw_key: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base_url}/review")
    page.fill("#key", raw_key)
    page.click("#save-key")
    page.wait_for_selector("#who:has-text('logged in as')", timeout=10_000)  # the page's CSP forbids eval'd waits
    assert page.evaluate("sessionStorage.getItem('skintrouble.reviewKey')") == raw_key
    page.keyboard.press("n")
    page.wait_for_selector("body[data-state='ready']", timeout=10_000)


class Photo:
    """Photo pixels -> page pixels for the current view."""

    def __init__(self, page) -> None:  # type: ignore[no-untyped-def]
        self.page = page
        self.canvas = page.locator("#canvas").bounding_box()
        self.view = page.evaluate("skintroubleReview.view()")

    def screen(self, x: float, y: float) -> tuple[float, float]:
        return self.canvas["x"] + self.view["ox"] + x * self.view["scale"], self.canvas["y"] + self.view["oy"] + y * (
            self.view["scale"]
        )

    def drag(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        self.page.mouse.move(*self.screen(*start))
        self.page.mouse.down()
        self.page.mouse.move(*self.screen(*end), steps=8)
        self.page.mouse.up()

    @property
    def tolerance(self) -> float:
        return 1.5 / self.view["scale"] + 0.2  # one screen pixel either way, plus rounding


def select_box(page, point: tuple[float, float], index: int) -> None:  # type: ignore[no-untyped-def]
    """Click until box `index` is selected, then let two animation frames draw its handles (Konva draws per frame).

    A click landing while the page still redraws the previous edit can miss on a loaded machine; a person would
    simply click again, and so does this. Polled: the page's CSP forbids the eval behind wait_for_function."""
    for _ in range(5):
        page.mouse.click(*point)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and page.evaluate("skintroubleReview.selected()") != index:
            page.wait_for_timeout(20)
        if page.evaluate("skintroubleReview.selected()") == index:
            break
    assert page.evaluate("skintroubleReview.selected()") == index, f"box {index} was never selected"
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")


def labels_of(settings: Settings, case_id: str) -> list[Label]:
    with session_scope(settings.sqlalchemy_url) as session:
        labels = session.scalars(select(Label).where(Label.case_id == case_id)).all()
        session.expunge_all()
        return list(labels)


def test_review_page_corrects_boxes_labels_a_papule_and_submits(
    settings: Settings, base_url: str, browser_page
) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    case_id, raw_key = _seed(settings)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    log_in_and_claim(page, base_url, raw_key)
    assert page.evaluate("skintroubleReview.caseId()") == case_id
    assert page.evaluate("skintroubleReview.boxes()") == [{"label": f["label"], "box": f["box"]} for f in FINDINGS]
    # the canvas is a Konva stage, vendored: every request stays on our origin (no CDN)
    assert page.evaluate("Konva.version") == "10.9.1"
    assert page.locator("#canvas canvas").count() == 3  # photo, boxes, tags layers
    assert f"{base_url}/review/static/vendor/konva.min.js" in requested
    assert all(url.startswith(base_url) or url.startswith("blob:") for url in requested), requested
    photo = Photo(page)

    photo.drag((115, 114), (135, 124))  # move box 0 by (+20, +10)
    select_box(page, photo.screen(310, 211), 1)  # select box 1 (its resize handles drawn) ...
    photo.drag((320, 222), (332, 240))  # ... and pull its bottom-right corner by (+12, +18)
    photo.drag((450, 300), (490, 340))  # a new box on empty skin
    page.select_option("#box-class", "papule")  # a lesion type the one-class model does not have
    page.locator("#canvas").focus()
    page.keyboard.press("2")  # grade
    assert page.evaluate("skintroubleReview.touched()") is True
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))

    page.keyboard.press("s")
    page.wait_for_selector("#status:has-text('Saved as')", timeout=10_000)
    assert "corrected" in page.text_content("#status")

    (label,) = labels_of(settings, case_id)
    assert (label.verdict, label.grade, label.model_version) == ("corrected", 2, "test-model-1")
    with session_scope(settings.sqlalchemy_url) as session:
        assert session.get(ReviewItem, case_id).status == "done"
    assert [b["label"] for b in label.boxes] == ["lesion", "lesion", "papule"]
    expected = [[120, 110, 150, 138], [300, 200, 332, 240], [450, 300, 490, 340]]
    for got, want in zip(label.boxes, expected, strict=True):
        assert got["box"] == pytest.approx(want, abs=photo.tolerance), (got, want)
    assert os.path.getsize(SCREENSHOT) > 10_000


def test_the_key_is_checked_at_login(settings: Settings, base_url: str, browser_page) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    with session_scope(settings.sqlalchemy_url) as session:
        _, app_key = api_keys.create_key(session=session, role="app", name="phone")
    page.goto(f"{base_url}/review")
    page.fill("#key", "st_not-a-real-key")
    page.click("#save-key")
    page.wait_for_selector("#status.error:has-text('not valid')", timeout=10_000)
    assert page.get_attribute("body", "data-state") == "logged-out"
    assert page.evaluate("sessionStorage.getItem('skintrouble.reviewKey')") is None
    assert page.text_content("#who") == "not logged in"
    page.fill("#key", app_key)
    page.click("#save-key")
    page.wait_for_selector("#status.error:has-text('not a dermatologist key')", timeout=10_000)
    assert page.evaluate("skintroubleReview.loggedIn()") is False
    page.keyboard.press("n")  # nothing happens without a checked key
    page.wait_for_selector("#status:has-text('Log in with your API key first')", timeout=10_000)


def test_the_grade_is_not_preselected_and_confirming_the_model_is_explicit(
    settings: Settings, base_url: str, browser_page
) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    case_id, raw_key = _seed(settings)
    log_in_and_claim(page, base_url, raw_key)
    assert page.evaluate("skintroubleReview.grade()") is None
    assert page.locator("#grades button[aria-pressed='true']").count() == 0
    assert page.get_attribute("#grades button[data-grade='0']", "data-model") == "true"  # shown, not chosen
    assert "Model: grade 0" in page.text_content("#model-grade")
    assert page.text_content("#submit") == "Submit (choose a grade)"

    page.keyboard.press("s")  # one key press no longer rubber-stamps the model
    page.wait_for_selector("#status.error:has-text('Choose your grade')", timeout=10_000)
    assert labels_of(settings, case_id) == []

    # confidences are shown on the pre-labels; the tags of the two boxes do not overlap
    tags = page.evaluate("skintroubleReview.tags()")
    assert sorted(t["text"] for t in tags) == ["lesion 31%", "lesion 42%"]
    page.keyboard.press("h")  # hide the pre-labels: nothing drawn, nothing to grab
    assert page.evaluate("skintroubleReview.tags()") == []
    page.screenshot(path=str(SHOTS / "review_prelabels_hidden.png"))
    page.keyboard.press("h")
    page.keyboard.press("a")  # an explicit "agree with the model's grade"
    assert page.evaluate("skintroubleReview.grade()") == 0
    assert page.text_content("#submit") == "Submit (confirmed)"
    page.keyboard.press("s")
    page.wait_for_selector("#status:has-text('Saved as confirmed')", timeout=10_000)
    (label,) = labels_of(settings, case_id)
    assert (label.verdict, label.grade) == ("confirmed", 0)


def test_unsaved_edits_are_never_discarded_silently_and_undo_redo(
    settings: Settings, base_url: str, browser_page
) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    case_id, raw_key = _seed(settings)
    log_in_and_claim(page, base_url, raw_key)
    original = page.evaluate("skintroubleReview.boxes()")
    photo = Photo(page)
    photo.drag((115, 114), (135, 124))  # move box 0
    photo.drag((450, 300), (490, 340))  # add a box
    page.keyboard.press("1")
    moved = page.evaluate("skintroubleReview.boxes()")
    assert page.evaluate("skintroubleReview.history()") == {"undo": 3, "redo": 0}

    page.keyboard.press("n")  # would discard: the page asks first
    page.wait_for_selector("#guard:has-text('Unsaved edits')", timeout=5_000)
    page.screenshot(path=str(SHOTS / "review_unsaved_guard.png"))
    assert (
        page.evaluate("skintroubleReview.boxes()") == moved and page.evaluate("skintroubleReview.caseId()") == case_id
    )
    page.keyboard.press("Escape")
    assert page.is_hidden("#guard")
    page.keyboard.press("u")  # unusable needs a second press too
    page.wait_for_selector("#guard:has-text('unusable')", timeout=5_000)
    page.keyboard.press("Escape")
    assert labels_of(settings, case_id) == []

    page.keyboard.press("Control+z")  # grade
    page.keyboard.press("Control+z")  # the new box
    assert page.evaluate("skintroubleReview.grade()") is None
    assert len(page.evaluate("skintroubleReview.boxes()")) == 2
    page.keyboard.press("Control+z")  # the move
    assert page.evaluate("skintroubleReview.boxes()") == original
    page.keyboard.press("Control+Shift+z")
    page.keyboard.press("Control+y")
    assert page.evaluate("skintroubleReview.boxes()") == moved
    assert page.evaluate("skintroubleReview.history()") == {"undo": 2, "redo": 1}
    page.click("#redo")
    assert page.evaluate("skintroubleReview.grade()") == 1

    page.keyboard.press("n")
    page.wait_for_selector("#guard:not([hidden])", timeout=5_000)
    page.keyboard.press("n")  # the second press discards: the case comes back as the model left it
    page.wait_for_selector("#status:has-text('claimed until')", timeout=10_000)
    assert page.evaluate("skintroubleReview.caseId()") == case_id
    assert page.evaluate("skintroubleReview.boxes()") == original
    assert page.evaluate("skintroubleReview.grade()") is None

    # leaving the page with unsaved edits: the browser's own "leave site?" prompt
    dialogs: list[str] = []

    def stay(dialog) -> None:  # type: ignore[no-untyped-def]
        dialogs.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", stay)
    page.keyboard.press("3")
    page.close(run_before_unload=True)
    page.wait_for_timeout(500)
    assert dialogs == ["beforeunload"] and not page.is_closed()


def _pixel(page, x: float, y: float) -> list[int]:  # type: ignore[no-untyped-def]
    """The canvas pixel (RGB) at a photo position."""
    view = page.evaluate("skintroubleReview.view()")
    dpr = page.evaluate("window.devicePixelRatio")
    sx, sy = (view["ox"] + x * view["scale"]) * dpr, (view["oy"] + y * view["scale"]) * dpr
    return page.evaluate(
        "Array.from(document.querySelector('#canvas canvas').getContext('2d')"  # the photo layer's canvas
        f".getImageData({int(sx)}, {int(sy)}, 1, 1).data)"
    )[:3]


def _slide(page, selector: str, value: float) -> None:  # type: ignore[no-untyped-def]
    page.locator(selector).evaluate(f"(el) => {{ el.value = '{value}'; el.dispatchEvent(new Event('input')); }}")


def test_brightness_contrast_gamma_and_the_heatmap_layer(settings: Settings, base_url: str, browser_page) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    _, raw_key = _seed(settings)
    log_in_and_claim(page, base_url, raw_key)
    at = (200.0, 400.0)  # plain skin, no box
    before = _pixel(page, *at)
    _slide(page, "#brightness", 60)
    page.wait_for_timeout(150)
    brighter = _pixel(page, *at)
    assert all(b > a + 30 for a, b in zip(before, brighter, strict=True)), (before, brighter)
    _slide(page, "#brightness", 0)
    _slide(page, "#gamma", 2.0)  # gamma > 1 lifts the mid-tones
    page.wait_for_timeout(150)
    lifted = _pixel(page, *at)
    assert sum(lifted) > sum(before) + 30, (before, lifted)
    _slide(page, "#contrast", 60)
    page.wait_for_timeout(150)
    assert page.evaluate("skintroubleReview.adjust()") == {"brightness": 0, "contrast": 60, "gamma": 2}
    page.keyboard.press("m")  # the heatmap: computed on demand by the served detector
    page.wait_for_selector("#status:has-text('Heatmap:')", timeout=60_000)
    assert page.evaluate("skintroubleReview.layers()")["heatmapLoaded"] is True
    page.screenshot(path=str(SHOTS / "review_adjusted_heatmap.png"))
    page.keyboard.press("m")
    page.keyboard.press("r")  # reset the image
    page.wait_for_timeout(150)
    assert _pixel(page, *at) == before


def _touch(cdp, kind: str, points: list[tuple[float, float]]) -> None:  # type: ignore[no-untyped-def]
    cdp.send(
        "Input.dispatchTouchEvent",
        {"type": kind, "touchPoints": [{"x": x, "y": y, "id": n} for n, (x, y) in enumerate(points)]},
    )


def test_touch_and_pen_through_pointer_events(settings: Settings, base_url: str, playwright_session) -> None:  # type: ignore[no-untyped-def]
    browser, page = _launch(playwright_session, has_touch=True)
    try:
        case_id, raw_key = _seed(settings)
        log_in_and_claim(page, base_url, raw_key)
        photo = Photo(page)
        cdp = page.context.new_cdp_session(page)
        # a finger drags box 0 by (+20, +10)
        _touch(cdp, "touchStart", [photo.screen(115, 114)])
        for k in range(1, 9):
            _touch(cdp, "touchMove", [photo.screen(115 + 20 * k / 8, 114 + 10 * k / 8)])
        _touch(cdp, "touchEnd", [])
        boxes = page.evaluate("skintroubleReview.boxes()")
        assert boxes[0]["box"] == pytest.approx([120, 110, 150, 138], abs=photo.tolerance)
        # a pen draws a new box
        for kind, (x, y) in [
            ("mousePressed", (450, 300)),
            ("mouseMoved", (470, 320)),
            ("mouseMoved", (490, 340)),
            ("mouseReleased", (490, 340)),
        ]:
            sx, sy = photo.screen(x, y)
            cdp.send(
                "Input.dispatchMouseEvent",
                {
                    "type": kind,
                    "x": sx,
                    "y": sy,
                    "button": "left",
                    "buttons": 0 if kind == "mouseReleased" else 1,
                    "clickCount": 1,
                    "pointerType": "pen",
                },
            )
        boxes = page.evaluate("skintroubleReview.boxes()")
        assert len(boxes) == 3 and boxes[2]["box"] == pytest.approx([450, 300, 490, 340], abs=photo.tolerance)
        # two fingers moving apart zoom in, and leave the boxes alone
        scale = page.evaluate("skintroubleReview.view()")["scale"]
        cx, cy = photo.screen(250, 250)
        _touch(cdp, "touchStart", [(cx - 20, cy), (cx + 20, cy)])
        for k in range(1, 6):
            _touch(cdp, "touchMove", [(cx - 20 - 12 * k, cy), (cx + 20 + 12 * k, cy)])
        _touch(cdp, "touchEnd", [])
        assert page.evaluate("skintroubleReview.view()")["scale"] > 2 * scale
        assert page.evaluate("skintroubleReview.boxes()") == boxes
        page.screenshot(path=str(SHOTS / "review_touch_zoomed.png"))
        assert page.evaluate("skintroubleReview.caseId()") == case_id
    finally:
        browser.close()


def test_reliability_panel_flags_the_sloppy_reviewer(settings: Settings, base_url: str, browser_page) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    _, raw_key = _seed(settings)
    with session_scope(settings.sqlalchemy_url) as session:
        for n in range(4):
            case = Case(status="done", width=W, height=H, findings=FINDINGS, lesion_count=2, grade=0)
            session.add(case)
            session.flush()
            review_repo.enqueue(session=session, case_id=case.id, reason="audit_sample", priority=0, reviews_required=3)
            boxes = [{"label": "lesion", "box": f["box"]} for f in FINDINGS]
            for reviewer, grade in (("careful-a", 0), ("careful-b", 0), ("sloppy", 3 if n < 3 else 0)):
                session.add(Label(case_id=case.id, reviewer_id=reviewer, verdict="corrected", grade=grade, boxes=boxes))
    page.goto(f"{base_url}/review")
    page.fill("#key", raw_key)
    page.click("#save-key")
    page.wait_for_selector("#who:has-text('logged in as')", timeout=10_000)
    page.click("#load-stats")
    page.wait_for_selector("#stats tr.flagged", timeout=10_000)
    flagged = page.locator("#stats tr.flagged").all_text_contents()
    assert len(flagged) == 1 and flagged[0].startswith("sloppy") and "below 60%" in flagged[0]
    assert "quadratic-weighted" in page.text_content("#stats")
    assert page.locator("#stats").bounding_box()["height"] > 40  # not squeezed away by the side panel
    page.locator("#stats").evaluate("(el) => el.scrollIntoView()")
    page.screenshot(path=str(SHOTS / "review_reliability.png"))


def test_tags_in_a_cluster_never_cover_each_other(settings: Settings, base_url: str, browser_page) -> None:  # type: ignore[no-untyped-def]
    """Twelve lesions packed in a 60-pixel patch: tags take free spots around their boxes or wait for selection."""
    page = browser_page
    corners = [(200.0 + 12 * (n % 4), 200.0 + 14 * (n // 4)) for n in range(12)]
    cluster = [
        {"label": "lesion", "confidence": round(0.3 + 0.05 * n, 2), "box": [x, y, x + 10.0, y + 10.0]}
        for n, (x, y) in enumerate(corners)
    ]
    _, raw_key = _seed(settings, findings=cluster)
    log_in_and_claim(page, base_url, raw_key)
    tags = page.evaluate("skintroubleReview.tags()")
    assert 0 < len(tags) < 12
    photo = Photo(page)

    def overlap(ra: list[float], rb: list[float]) -> bool:
        return ra[0] < rb[2] and rb[0] < ra[2] and ra[1] < rb[3] and rb[1] < ra[3]

    for n, a in enumerate(tags):
        for b in tags[n + 1 :]:
            assert not overlap(a["rect"], b["rect"]), (a, b)
        for m, finding in enumerate(cluster):  # nor hides another lesion
            x1, y1, x2, y2 = finding["box"]
            (sx1, sy1), (sx2, sy2) = photo.screen(x1, y1), photo.screen(x2, y2)
            canvas = photo.canvas
            on_canvas = [sx1 - canvas["x"], sy1 - canvas["y"], sx2 - canvas["x"], sy2 - canvas["y"]]
            assert m == a["index"] or not overlap(a["rect"], on_canvas), (a, m)
    hidden = sorted(set(range(12)) - {t["index"] for t in tags})
    x1, y1, x2, y2 = cluster[hidden[0]]["box"]
    page.mouse.click(*photo.screen((x1 + x2) / 2, (y1 + y2) / 2))  # selecting a box shows its tag
    assert hidden[0] in {t["index"] for t in page.evaluate("skintroubleReview.tags()")}
    page.screenshot(path=str(SHOTS / "review_cluster_tags.png"))
