"""The map page in a real browser (Debian's headless chromium + chromedriver, through selenium)."""

from __future__ import annotations

from pathlib import Path

from .browser import choose_region, wait_for
from .scene import TARGETS


def test_map_page_draws_the_events_and_their_details(browser, live_url, web_scene, tmp_path: Path):
    driver = browser
    driver.get(f"{live_url}/")
    wait_for(driver, "return window.banetMap && window.banetMap.ready")
    choose_region(driver, web_scene.region.name)
    wait_for(driver, f"return document.getElementById('date-label').textContent === '{TARGETS[-1]}' && document.querySelectorAll('#events li').length === 4")
    wait_for(driver, "return document.getElementById('event-count').textContent === '(4 of 4 on the map)'")
    drawn = int(wait_for(driver, "const n = Number(document.getElementById('event-count').dataset.count); return n > 0 ? String(n) : null"))
    assert drawn == 4  # every event polygon of the latest product is rendered on the map
    rendered = driver.execute_script("return window.banetMap.map.queryRenderedFeatures({layers: ['events-fill']}).length")
    assert rendered >= 4
    assert driver.execute_script("return window.banetMap.map.getLayer('raster-burn_date') !== undefined")
    # click the first (earliest) event in the list: dates, area, run and daily growth appear
    driver.execute_script("document.querySelector('#events li:first-child').click()")
    wait_for(driver, "return document.querySelectorAll('#growth span').length > 3")
    details = driver.find_element("id", "event-details").text
    assert "Burn dates" in details and "km²" in details and f"nrt {TARGETS[-1]}" in details and "undefined" not in details
    assert driver.execute_script("return document.querySelector('#events li:first-child').classList.contains('selected')")
    # the coverage calendar: a missing and a partial day, every other day complete
    assert driver.execute_script("return document.querySelector('#calendar [data-day=\"2024-07-03\"]').classList.contains('missing')")
    assert driver.execute_script("return document.querySelector('#calendar [data-day=\"2024-07-04\"]').classList.contains('partial')")
    assert driver.execute_script("return document.querySelectorAll('#calendar .complete').length") == 78
    shot = tmp_path / "burned-areas.png"
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 20_000
    # the date slider goes back to the first product: fewer, smaller events
    driver.execute_script("const s = document.getElementById('date'); s.value = 0; s.dispatchEvent(new Event('input'));")
    wait_for(driver, f"return document.getElementById('date-label').textContent === '{TARGETS[0]}'")
    wait_for(driver, f"return document.getElementById('summary').textContent.startsWith('nrt {TARGETS[0]}')")
    wait_for(driver, "return document.getElementById('event-count').textContent === '(3 of 3 on the map)'")
