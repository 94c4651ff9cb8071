"""The city screen in headless Chromium, driven over the DevTools Protocol against the real app."""

from __future__ import annotations

import base64
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.e2e.browser import ADMIN, Cdp, shoot, until

pytestmark = pytest.mark.db

# Lots of the screenshot: (lot_id, district_id, name, lat, lon, capacity).
LOTS = (
    ("E1", "jinshui", "花园路停车场", 34.7900, 113.6800, 12),
    ("E2", "jinshui", "经三路路侧", 34.7800, 113.6700, 6),
    ("E3", "jinshui", "金水广场", 34.7750, 113.6950, 20),
    ("E4", "erqi", "二七广场地下", 34.7530, 113.6620, 16),
    ("E5", "erqi", "大学路路侧", 34.7400, 113.6500, 8),
    ("E6", "zhongyuan", "中原万达", 34.7500, 113.6100, 24),
)


async def provision(http: aiohttp.ClientSession, base_url: str) -> None:
    """Create the districts and lots of LOTS through the admin API."""
    for district_id, name in (("jinshui", "金水区"), ("erqi", "二七区"), ("zhongyuan", "中原区")):
        body = {"name": name, "outline_name": name, "public_spaces": 1000, "onboarded_on": "2025-01-01"}
        resp = await http.put(f"{base_url}/v1/admin/districts/{district_id}", json=body, headers=ADMIN)
        assert resp.status in {200, 201}, await resp.text()
    for lot_id, district_id, name, lat, lon, capacity in LOTS:
        body = {
            "name": name,
            "kind": "on_street" if capacity < 10 else "off_street",
            "district_id": district_id,
            "lat": lat,
            "lon": lon,
            "spots": [{"spot_id": f"{lot_id}-{n:03}"} for n in range(capacity)],
        }
        resp = await http.put(f"{base_url}/v1/admin/lots/{lot_id}", json=body, headers=ADMIN)
        assert resp.status in {200, 201}, await resp.text()


async def set_spots(db: asyncpg.Connection, lot_id: str, free: int, unknown: int = 0) -> None:
    """Set a lot's spots and counters in one transaction, as the gateway does: free, unknown, occupied."""
    async with db.transaction():
        await db.execute(
            "UPDATE spots SET status = CASE WHEN n <= $2 THEN 'free' WHEN n <= $2 + $3 THEN 'unknown'"
            " ELSE 'occupied' END, since = now()"
            " FROM (SELECT spot_id AS id, row_number() OVER (ORDER BY spot_id) AS n FROM spots"
            "       WHERE lot_id = $1) AS numbered WHERE spot_id = numbered.id",
            lot_id,
            free,
            unknown,
        )
        await db.execute(
            "UPDATE lots SET (free_count, occupied_count, reserved_count, unknown_count, closed_count)"
            " = (SELECT count(*) FILTER (WHERE status = 'free'), count(*) FILTER (WHERE status = 'occupied'),"
            "    count(*) FILTER (WHERE status = 'reserved'), count(*) FILTER (WHERE status = 'unknown'),"
            "    count(*) FILTER (WHERE status = 'closed') FROM spots WHERE spots.lot_id = lots.lot_id),"
            " counts_updated_at = now() WHERE lot_id = $1",
            lot_id,
        )


async def test_root_redirects_to_the_page_and_assets_are_served(
    base_url: str, http: aiohttp.ClientSession
) -> None:
    """`/` leads to the page; its script and style sheet are served; other names are a 404 problem."""
    resp = await http.get(f"{base_url}/", allow_redirects=False)
    assert (resp.status, resp.headers["Location"]) == (302, "/dashboard/")
    page_resp = await http.get(f"{base_url}/")
    assert page_resp.url.path == "/dashboard/"
    assert "一屏观全城" in await page_resp.text()
    script = await http.get(f"{base_url}/dashboard/dashboard.js")
    assert (script.status, script.content_type) == (200, "text/javascript")
    style = await http.get(f"{base_url}/dashboard/dashboard.css")
    assert (style.status, style.content_type) == (200, "text/css")
    missing = await http.get(f"{base_url}/dashboard/secrets.txt")
    assert (missing.status, missing.content_type) == (404, "application/problem+json")
    html = await page_resp.text()
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # no CDN, no internet


# Every label's box on the map, and how many pairs of them overlap (strictly: touching is allowed).
LABEL_OVERLAPS = """(() => {
  const boxes = [...document.querySelectorAll('#map text')].map(t => t.getBBox());
  let overlaps = 0;
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i], b = boxes[j];
    const apart = a.x >= b.x + b.width || b.x >= a.x + a.width
      || a.y >= b.y + b.height || b.y >= a.y + a.height;
    if (!apart) overlaps++;
  }
  return [boxes.length, overlaps];
})()"""


async def check_the_map(page: Cdp) -> None:
    """The city's 12 outlines are drawn, district names head the list, no two labels overlap in
    either view, and the coverage panel counts the onboarded districts.
    """
    await until(lambda: page.evaluate("document.querySelectorAll('#map path.area').length"), 12)
    served = await page.evaluate("document.querySelectorAll('#map path.area-served').length")
    assert served == 3
    headers = await page.evaluate(
        "[...document.querySelectorAll('article.district h3')].map(h => h.textContent)"
    )
    assert headers == ["二七区 · 区 District", "金水区 · 区 District", "中原区 · 区 District"]
    areas = "[...document.querySelectorAll('#map text.area-label')].map(t => t.textContent)"
    labels, overlaps = await page.evaluate(LABEL_OVERLAPS)
    assert (labels, overlaps) == (labels, 0)
    assert {"中牟县", "登封市", "巩义市", "荥阳市", "新密市", "新郑市"} <= set(await page.evaluate(areas))
    await page.evaluate("document.querySelector('[data-view=core]').click()")
    await until(
        lambda: page.evaluate("document.querySelector('[data-view=core]').getAttribute('aria-pressed')"),
        "true",
    )
    labels, overlaps = await page.evaluate(LABEL_OVERLAPS)
    await shoot(page, "dashboard-core.png")
    lot_labels = await page.evaluate("document.querySelectorAll('#map text.dot-label').length")
    assert (overlaps, lot_labels >= 3) == (0, True)
    assert {"中原区", "二七区", "金水区"} <= set(await page.evaluate(areas))
    coverage = await page.evaluate("document.getElementById('coverage-now').textContent")
    assert "3 区县 districts" in coverage, coverage
    assert "6 场 lots" in coverage, coverage
    await page.evaluate("document.querySelector('[data-view=city]').click()")


@pytest.mark.browser
async def test_the_city_screen_shows_live_counts_as_they_change(
    page: Cdp, base_url: str, http: aiohttp.ClientSession, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """Counts in the list, the city totals and the map follow the database while the page polls."""
    await provision(http, base_url)
    for lot_id, free in (("E1", 4), ("E2", 0), ("E3", 15), ("E4", 1), ("E5", 3), ("E6", 10)):
        await set_spots(db, lot_id, free)
    await set_spots(db, "E5", 1, unknown=6)  # most sensors silent: the lot is unknown, not a count
    await page.send(
        "Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False
    )
    await page.send("Page.navigate", url=f"{base_url}/")

    def free_of(lot_id: str) -> Callable[[], Awaitable[Any]]:
        return lambda: page.evaluate(
            f"document.querySelector('li[data-lot-id=\"{lot_id}\"] .free')?.textContent"
        )

    await until(free_of("E1"), "4")
    assert await page.evaluate("document.getElementById('city-free').textContent") == "31"
    assert await page.evaluate("document.querySelectorAll('#map circle.dot').length") == len(LOTS)
    statuses = await page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('li[data-lot-id]')]"
        ".map(li => [li.dataset.lotId, li.dataset.status]))"
    )
    assert statuses == {
        "E1": "open",
        "E2": "full",
        "E3": "open",
        "E4": "almost_full",
        "E5": "unknown",
        "E6": "open",
    }
    districts = await page.evaluate(
        "[...document.querySelectorAll('article.district')].map(a => a.dataset.districtId)"
    )
    assert districts == ["erqi", "jinshui", "zhongyuan"]

    await check_the_map(page)

    await set_spots(db, "E1", 9)  # five cars leave
    await set_spots(db, "E2", 2)  # a full street frees up
    await until(free_of("E1"), "9")
    await until(free_of("E2"), "2")
    await until(lambda: page.evaluate("document.getElementById('city-free').textContent"), "38")
    dot = "document.querySelector('#map circle[data-lot-id=\"E2\"]').getAttribute('class')"
    await until(lambda: page.evaluate(dot), "dot s-open")

    shot = await page.send("Page.captureScreenshot", format="png")
    png = base64.b64decode(shot["data"])
    target = Path(os.environ.get("PARKING_SCREENSHOT_DIR", tmp_path)) / "dashboard.png"
    target.write_bytes(png)
    assert png.startswith(b"\x89PNG")
    assert len(png) > 10_000
    thrown = [e for e in page.events if e.get("method") == "Runtime.exceptionThrown"]
    assert thrown == [], thrown
