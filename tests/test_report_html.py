"""The run report for people: self-contained, masked, and drawn by a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from autosynk.report_html import chart_svg, render
from tests.demo_municipality import Municipality, lines_of
from tests.test_guarded_nights import vanish_children

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

SUMMARY = {
    "run_id": "cli__20261201T203000000000Z",
    "kind": "nightly",
    "status": "refused",
    "municipality": "Exempelby",
    "evaluation_date": "2026-12-01",
    "message": "refused by its guards: relations guardian_for: 900 removes of 1000 delivered",
    "plan": {
        "plan_id": "3f9a1c2b7d4e",
        "base_run": "cli__20261130T203000000000Z",
        "refused": True,
        "guards": [
            {
                "scope": "relations",
                "type": "guardian_for",
                "operation": "remove",
                "count": 900,
                "delivered": 1000,
                "share": 0.9,
                "max_share": 0.15,
                "min_rows": 200,
                "max_rows": None,
                "tripped": True,
                "waived": None,
            }
        ],
        "counts": {"principals": {}, "relations": {}},
    },
    "quarantine": {
        "quarantined": 1,
        "reasons": {"invalid identity number 20130315-2381": 1},
        "entries": [{"entity": "person", "source_id": "201303152381", "reason": "x"}],
        "warning_reasons": {"transliterated to ISO-8859-1": 3},
    },
    "files": [{"name": "Exempelby_20261201_2030.principals", "size": 10, "sha256": "ab" * 32}],
    "stages": {"extract": {"seconds": 1.25, "count": 4321, "unit": "records"}},
}


def test_the_page_loads_nothing_and_masks_identity_numbers():
    page = render(SUMMARY, [{"run_id": "a", "adds": 5, "changes": 0, "removes": 900}])
    assert "<script" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "20130315-2381" not in page and "201303152381" not in page
    assert "20130315-****" in page
    assert 'class="status refused"' in page and "REFUSED" in page
    assert "autosynk run --config &lt;config&gt; --approve 3f9a1c2b7d4e" in page
    assert "transliterated to ISO-8859-1" in page
    assert "4321 records" in page


@pytest.mark.parametrize(
    ("history", "bars"),
    [
        ([], 0),
        ([{"run_id": "a", "adds": 0, "changes": 0, "removes": 0}], 3),
        (
            [
                {"run_id": "a", "adds": 5000, "changes": 0, "removes": 0},
                {"run_id": "b", "adds": 12, "changes": 3, "removes": 40},
            ],
            6,
        ),
    ],
)
def test_chart_has_three_bars_per_run(history, bars):
    svg = chart_svg(history, "b") if history else ""
    assert svg.count('class="bar ') == bars
    heights = [float(h) for h in re.findall(r'class="bar \w+"[^>]*height="([\d.]+)"', svg)]
    assert all(h >= 0 for h in heights)
    if len(history) == 2:  # log scale: 12 adds still show, far below 5000
        assert 0 < heights[3] < heights[0]


def screenshot(page: Path, png: Path) -> None:
    profile = tempfile.mkdtemp(prefix="autosynk-chromium-")
    try:
        subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--window-size=1280,2400",
                f"--screenshot={png}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def test_the_report_of_a_refused_night_renders_in_chromium_with_its_chart(tmp_path, capsys):
    from PIL import Image

    town = Municipality(tmp_path)
    assert town.run() == 0
    vanish_children(town, 0.4)
    capsys.readouterr()
    assert town.run() == 3
    (report,) = lines_of(capsys.readouterr().out, "report: ")
    png = tmp_path / "report.png"
    screenshot(Path(report), png)

    image = Image.open(png).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50, "a blank page"
    counts = {rgb: n for n, rgb in colours}
    # the chart's bars: the adds of the first night and the removes of tonight are drawn
    for series in ((0x2E, 0x7D, 0x32), (0xC6, 0x28, 0x28)):
        assert counts.get(series, 0) > 100, f"no {series} bar in the chart"
