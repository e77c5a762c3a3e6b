"""Flask-Admin's icons (Font Awesome 4.7, a web font) are drawn on the first paint instead
of showing blank while their font loads: the font is preloaded with the stylesheets."""

import os

import pytest

from tests.browser.conftest import ADMIN, CHROMIUM, sign_in

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} does not exist: browser tests skipped", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

pytestmark = pytest.mark.browser

FONT = "fontawesome-webfont.woff2"
TIMINGS = """() => {
  const paint = performance.getEntriesByName('first-contentful-paint')[0];
  const fonts = performance.getEntriesByType('resource').filter(e => e.name.includes('fontawesome-webfont'));
  return {
    firstPaint: paint.startTime,
    fonts: fonts.map(e => ({name: e.name, initiator: e.initiatorType, end: e.responseEnd})),
    drawn: document.fonts.check('14px FontAwesome'),
  };
}"""


def test_the_icon_font_arrives_before_the_first_paint(page):
    sign_in(page, ADMIN)
    # Each request takes a while, as over a real network: without the preload the font was
    # asked for only once the stylesheets had arrived and the page was laid out, and came
    # 200-300 ms after the first paint, the icons blank until then.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 150, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    fetched = []
    page.on("request", lambda request: fetched.append(request.url) if FONT in request.url else None)
    page.goto("/admin/product/")
    page.wait_for_load_state("load")
    assert page.locator(".model-list .fa").count() > 0

    timings = page.evaluate(TIMINGS)
    assert len(fetched) == 1, fetched  # the preload is the font the stylesheet uses, not a second copy
    [font] = timings["fonts"]
    assert FONT in font["name"] and font["initiator"] == "link", font
    assert font["end"] <= timings["firstPaint"], timings
    assert timings["drawn"]
