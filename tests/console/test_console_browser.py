"""The console in a real browser (Debian's chromium through chromedriver, via Selenium; no
browser is downloaded) against a real ``central serve``, a real mosquitto and a real door
daemon with a simulated RDM6300: sign in, the door comes online, a tapped card shows live,
the card disabled as lost in the page is denied at the door, a confirmed lockdown changes the
door's mode, and a viewer cannot change anything.

The pages re-render live (htmx swaps on server-sent events), so an element found a moment ago
may be gone: every read and action re-finds its element and retries on a stale reference.
Screenshots go to a temp dir; ``EDGEGATE_SCREENSHOTS=docs/console`` (relative to the
checkout) refreshes the ones in docs/console.md."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.console.conftest import PASSWORD
from tests.console.site import Site, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
CARD = "0F00BC614E"
XSS = "<script>window.__xss = 1</script>"

if not (CHROMIUM.exists() and DRIVER.exists()):
    # The test command installs both: missing, the set-up failed (not a reason to skip).
    pytest.fail(
        "needs Debian's chromium and chromium-driver: run ./scripts/setup.sh test",
        pytrace=False,
    )
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402


@contextlib.contextmanager
def chromium(tmp_path: Path, *extra: str) -> Iterator[object]:
    """Debian's headless chromium through chromedriver, with ``extra`` switches."""
    opts = Options()
    opts.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,900",
        f"--user-data-dir={tmp_path / 'chrome'}",
        *extra,
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=opts)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    with chromium(tmp_path) as driver:
        yield driver


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: a temp dir, or EDGEGATE_SCREENSHOTS (the docs' are tracked files,
    rewritten only on purpose)."""
    wanted = os.environ.get("EDGEGATE_SCREENSHOTS")
    path = REPO / wanted if wanted else tmp_path / "shots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def unstale(fn, tries: int = 50):  # type: ignore[no-untyped-def]
    """``fn()``, again from the start while a live swap replaced an element it held."""
    for _ in range(tries - 1):
        try:
            return fn()
        except StaleElementReferenceException:
            time.sleep(0.05)
    return fn()


def sign_in(driver, url: str, name: str) -> None:  # type: ignore[no-untyped-def]
    driver.delete_all_cookies()
    driver.get(url + "/signin")
    driver.find_element(By.NAME, "username").send_keys(name)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "signin").click()
    wait_for(lambda: f"{name} (" in driver.page_source, 15, "signed in")


def text_of(driver, css: str) -> str:  # type: ignore[no-untyped-def]
    return unstale(lambda: " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, css)))


def click(driver, css: str) -> None:  # type: ignore[no-untyped-def]
    unstale(lambda: driver.find_element(By.CSS_SELECTOR, css).click())


def count(driver, css: str) -> int:  # type: ignore[no-untyped-def]
    return len(driver.find_elements(By.CSS_SELECTOR, css))


def test_console_in_a_browser(site: Site, browser, shots: Path) -> None:  # type: ignore[no-untyped-def]
    d = browser

    def shot(name: str) -> None:
        d.save_screenshot(str(shots / f"{name}.png"))

    assert site.central("people", "add", "alice", "--name", "Alice Martin", "--card", CARD) in (
        0,
        3,
    )
    assert site.central("people", "add", "eve", "--name", XSS) in (0, 3)
    site.serve()
    _door, reader = site.door("front")

    sign_in(d, site.url, "boss")
    d.get(site.url + "/doors")
    wait_for(
        lambda: "online" in text_of(d, 'tr[data-door="front"] .status'),
        60,
        "the door online on the board (live, no reload)",
    )
    wait_for(lambda: text_of(d, 'tr[data-door="front"] .mode') == "normal", 30, "mode")
    shot("doors")

    d.get(site.url + "/events")
    wait_for(lambda: d.execute_script("return document.querySelector('[sse-connect]') !== null"))
    before = count(d, "tr.ev")
    reader.tap(CARD)
    wait_for(lambda: count(d, "tr.ev.access_granted") > 0, 20, "the tap live in the events page")
    assert count(d, "tr.ev") > before
    assert "Alice Martin" in text_of(d, "tr.ev.access_granted")
    shot("events")

    # Lost card, in the page: the next tap is denied at the door.
    d.get(site.url + "/people/alice")
    form = f'tr[data-card="{CARD}"] form.lost'

    def disable_as_lost() -> None:
        # Filled and sent as one step: a swap in between would send the new, empty form.
        reason = d.find_element(By.CSS_SELECTOR, f"{form} input[name=reason]")
        reason.clear()
        reason.send_keys("lost at the canteen")
        button = d.find_element(By.CSS_SELECTOR, f"{form} button")
        assert reason.get_attribute("value") == "lost at the canteen"  # stale if swapped
        button.click()

    unstale(disable_as_lost)
    wait_for(lambda: "disabled" in text_of(d, f'tr[data-card="{CARD}"] .state'), 15)
    assert "lost at the canteen" in text_of(d, f'tr[data-card="{CARD}"] .state')
    shot("person")
    d.get(site.url + "/events?type=access_denied")

    def denied() -> bool:
        reader.tap(CARD)
        return bool(wait_quiet(lambda: d.find_elements(By.CSS_SELECTOR, "tr.ev.access_denied")))

    wait_for(denied, 30, "the door to deny the lost card")
    assert "revoked" in text_of(d, "tr.ev.access_denied .reason")

    d.get(site.url + "/people?q=eve")
    assert XSS in text_of(d, "#people .name")  # shown as text, not run
    assert d.execute_script("return window.__xss === undefined")
    shot("people")

    # Lockdown with confirmation: the browser's confirm dialog, then the door's mode.
    d.get(site.url + "/commands")
    click(d, "#cmd-front-lockdown")
    alert = d.switch_to.alert
    assert "lockdown" in alert.text
    alert.accept()
    wait_for(lambda: "sent lockdown to front" in d.page_source, 15)
    wait_for(lambda: "ok" in text_of(d, "#recent .ack"), 20, "the door's acknowledgement")
    shot("commands")
    d.get(site.url + "/doors")
    wait_for(
        lambda: text_of(d, 'tr[data-door="front"] .mode') == "lockdown",
        20,
        "the door's mode on the board",
    )

    d.get(site.url + "/traffic")
    wait_for(
        lambda: d.find_elements(By.CSS_SELECTOR, "div[data-chart] canvas"), 10, "uPlot charts drawn"
    )
    shot("traffic")
    for page in ("operators", "webhooks", "audit"):
        d.get(f"{site.url}/{page}")
        shot(page)
    assert "Chain intact" in text_of(d, "#chain")

    # A viewer sees no change anywhere and the server refuses any it tries.
    sign_in(d, site.url, "watcher")
    menu = text_of(d, "header nav")
    assert "Operators" not in menu and "People" not in menu
    d.get(site.url + "/commands")
    assert not d.find_elements(By.CSS_SELECTOR, "button[id^=cmd-]")
    status = d.execute_script(
        "const t = document.body.getAttribute('hx-headers');"
        "return fetch('/api/v1/commands', {method: 'POST', headers: Object.assign("
        "{'Content-Type': 'application/json'}, JSON.parse(t)), body: JSON.stringify("
        "{door: 'front', cmd: 'unlock'})}).then(r => r.status);"
    )
    assert status == 403
    d.get(site.url + "/people/alice")
    assert "may not" in d.page_source
    shot("viewer")
    shutil.rmtree(site.tmp / "chrome", ignore_errors=True)


def wait_quiet(cond, timeout: float = 1.5):  # type: ignore[no-untyped-def]
    try:
        return wait_for(cond, timeout)
    except AssertionError:
        return None
