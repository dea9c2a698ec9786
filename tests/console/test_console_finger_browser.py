"""Finger enrolment from the console in a real browser (Debian's chromium via Selenium),
against a real ``central serve``, a real mosquitto and a real door daemon whose fingerprint
sensor is the simulator speaking the module's wire protocol on a pseudo-terminal.

The operator picks the door on the person's page; the office sends the signed
``enrol_finger`` command; the door runs its enrolment capture on its sensor and reports each
step, which the page shows live (the test places and lifts the finger as the page asks); the
template comes back sealed, the office stores it and publishes it; the door's library sync
writes it into its sensor and the same finger then opens the door. A second enrolment nobody
touches the sensor for fails, and the page says why."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from edgegate.sim.fingerprint import FingerprintSimulator, finger_template
from tests.console.site import wait_for
from tests.console.test_console_browser import (  # noqa: F401  (browser: the fixture)
    By,
    browser,
    sign_in,
    text_of,
)

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def sensor() -> Iterator[FingerprintSimulator]:
    sim = FingerprintSimulator().start()
    try:
        yield sim
    finally:
        sim.stop()


def state(d) -> str:  # type: ignore[no-untyped-def]
    return text_of(d, "#enrolment [data-state]")


def steps(d) -> list[str]:  # type: ignore[no-untyped-def]
    # Read in one script: the list is swapped live, element references would go stale.
    return d.execute_script(
        "return [...document.querySelectorAll('#enrolment li')].map(e => e.dataset.step)"
    )


def wait_step(d, step: str, n: int = 1) -> None:  # type: ignore[no-untyped-def]
    wait_for(lambda: steps(d).count(step) >= n, 30, f"the page to show step {step!r} x{n}")


def start_enrolment(d, url: str, person: str, door: str) -> None:  # type: ignore[no-untyped-def]
    def door_offered() -> bool:
        d.get(f"{url}/people/{person}")
        opts = d.find_elements(By.CSS_SELECTOR, f'#enrol-finger option[value="{door}"]')
        return bool(opts) and opts[0].get_attribute("disabled") is None

    wait_for(door_offered, 60, f"{door} offered for finger enrolment (online, with a reader)")
    d.find_element(By.CSS_SELECTOR, f'#enrol-finger option[value="{door}"]').click()
    d.find_element(By.CSS_SELECTOR, "#enrol-finger button[type=submit]").click()
    wait_for(lambda: "/enrolments/" in d.current_url, 15, "the enrolment page")


def test_finger_enrolled_from_the_console_opens_the_door(site, browser, sensor) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    d = browser
    assert site.central("people", "add", "carol", "--name", "Carol Jones") in (0, 3)
    site.serve()
    site.door("lab", fingerprint=sensor.port)
    sign_in(d, site.url, "boss")

    start_enrolment(d, site.url, "carol", "lab")
    wait_step(d, "place")
    sensor.place_finger("carol-thumb")
    wait_step(d, "lift")
    sensor.lift_finger()
    wait_step(d, "again")
    sensor.place_finger("carol-thumb")
    wait_for(lambda: "done" in state(d), 60, "the enrolment done")
    sensor.lift_finger()
    assert "finger enrolled as carol." in state(d)
    assert steps(d)[:4] == ["started", "place", "lift", "again"]
    d.get(site.url + "/people/carol")
    assert "model=r307" in text_of(d, "main")

    # The office published it; the door's library sync put the template into its sensor.
    template = finger_template("carol-thumb")
    wait_for(lambda: template in sensor.library.values(), 60, "the template in the sensor")

    # The same finger opens the door, as carol.
    d.get(site.url + "/events?type=access_granted")

    def granted() -> bool:
        sensor.place_finger("carol-thumb")
        try:
            return wait_for(
                lambda: "carol" in text_of(d, "tr.ev.access_granted"), 3, "carol's grant"
            )
        except AssertionError:
            return False
        finally:
            sensor.lift_finger()

    wait_for(granted, 40, "the door to open for carol's finger")

    # Nobody touches the sensor: the door gives up and the page says so.
    d.get(site.url + "/people/carol")
    d.execute_script(
        "const f = document.getElementById('enrol-finger');"
        "const t = document.createElement('input'); t.type = 'hidden'; t.name = 'timeout';"
        "t.value = '5'; f.appendChild(t);"
    )
    d.find_element(By.CSS_SELECTOR, '#enrol-finger option[value="lab"]').click()
    d.find_element(By.CSS_SELECTOR, "#enrol-finger button[type=submit]").click()
    wait_for(lambda: "/enrolments/" in d.current_url, 15, "the enrolment page")
    wait_for(lambda: "failed" in state(d), 40, "the failure shown")
    assert "no finger placed in time" in state(d)
