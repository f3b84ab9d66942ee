"""/docs and /redoc render in a headless Chromium with no network but the API itself, under their CSP."""

from __future__ import annotations

import pytest

from tests.e2e.test_review_page import base_url, browser_page, playwright_session  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow


def test_swagger_ui_and_redoc_render_offline(base_url: str, browser_page) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    page = browser_page
    outside: list[str] = []
    script_violations: list[str] = []

    def offline(route) -> None:  # type: ignore[no-untyped-def]
        if route.request.url.startswith(base_url):
            route.continue_()
        else:  # what the machine cannot reach: recorded, refused
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", offline)
    page.on(
        "console",
        lambda m: (
            script_violations.append(m.text) if "Content Security Policy" in m.text and "script" in m.text else None
        ),
    )
    page.goto(f"{base_url}/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=20_000)  # operations listed: the UI ran
    assert page.locator(".opblock").count() > 10
    page.goto(f"{base_url}/redoc")
    page.wait_for_selector(".api-content", timeout=30_000)  # ReDoc rendered the document
    assert page.get_by_text("Analyse a skin photo").count() > 0
    # ReDoc's footer asks for Redocly's logo from its CDN: an image only, refused by the CSP anyway
    assert all(url.startswith("https://cdn.redoc.ly/") and url.endswith(".svg") for url in outside), outside
    assert not script_violations, script_violations
