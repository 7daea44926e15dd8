"""The HTML report in a real browser: headless Chromium (Debian's ``chromium`` package) renders it,
the DOM shows the GPU pages, the ratio table and decoded plots, and the screenshot is not blank.

Skipped with a reason when /usr/bin/chromium is missing, except under CI (``CI`` set), where a
missing browser fails the test so that CI cannot skip it silently.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from gpubench.report.build import build_report
from gpubench.report.outputs import write_report

RUNS = Path(__file__).parents[1] / "data" / "runs"
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1280,2000",
)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def chromium() -> Path:
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    reason = f"{CHROMIUM} not found: install Debian's browser with `apt-get install -y chromium`"
    if _in_ci():
        pytest.fail(f"CI is set but {reason}; the HTML report must be checked in a browser in CI")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def html_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    built = build_report(RUNS)
    written = write_report(built, out, ("html",))
    return written["html"]


def _chromium(browser: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(profile)}
    return subprocess.run(
        [str(browser), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_rendered_dom_has_gpu_pages_ratio_table_and_decoded_plots(
    chromium: Path, html_report: Path, tmp_path: Path
) -> None:
    done = _chromium(chromium, tmp_path / "profile", "--dump-dom", html_report.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    body = re.search(r"<body[^>]*>", dom)
    assert body is not None, dom[:500]
    # set by the page's own script after the load event, only when every <img> has naturalWidth > 0
    assert 'data-images-decoded="all"' in body.group(0), body.group(0)
    assert 'data-image-count="2"' in body.group(0)
    for uuid in (
        "GPU-00000000-fixt-0000-0000-000000000000",
        "GPU-11111111-fixt-1111-1111-111111111111",
        "cpu-fixture-node",
    ):
        assert f'data-uuid="{uuid}"' in dom
    assert dom.count('<section class="gpu"') == 3
    ratios = re.search(r'<table class="ratios">.*?</table>', dom, re.S)
    assert ratios is not None
    assert "<th>cuda:1 / cuda:0</th>" in ratios.group(0)
    assert "REGRESSION" in dom
    assert "OUTLIER" in dom


def test_screenshot_is_not_blank(chromium: Path, html_report: Path, tmp_path: Path) -> None:
    from PIL import Image

    shot = tmp_path / "report.png"
    done = _chromium(chromium, tmp_path / "profile", f"--screenshot={shot}", html_report.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.is_file(), done.stderr[-2000:]
    assert shot.stat().st_size > 50_000  # a blank 1280x2000 page compresses to a few kB
    with Image.open(shot) as image:
        rgb = image.convert("RGB")
        assert rgb.size == (1280, 2000)
        colours = rgb.getcolors(maxcolors=1_000_000)
        assert colours is not None and len(colours) > 200  # text, tables and plots, not one flat colour
        # the dark title band at the top and white page below it: the stylesheet was applied
        r, g, b = rgb.getpixel((5, 5))
        assert r + g + b < 200, (r, g, b)
        assert rgb.getpixel((640, 1990)) != (r, g, b)
        # the throughput plot (bars in matplotlib's tab10 blue) is drawn in the first screen
        blue = sum(
            n for n, (cr, cg, cb) in colours if abs(cr - 31) < 8 and abs(cg - 119) < 8 and abs(cb - 180) < 8
        )
        assert blue > 2_000
