"""End to end: ``repometer dashboard`` in a subprocess, the Repository page in a real headless
Chromium (Debian's ``chromium``, driven by Playwright; no browser is downloaded), and a
full-page screenshot in ``test-artifacts/dashboard.png``.

Skipped only when ``/usr/bin/chromium`` is missing outside CI; in CI (``CI`` set) a missing
browser fails the test (``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import free_port
from test_dashboard import build_store

from repometer.storage.schema import runs

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "test-artifacts" / "dashboard.png"
CHART = "[data-testid='stVegaLiteChart']"
RENDERED = f"{CHART} canvas, {CHART} svg"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason="/usr/bin/chromium is not installed (apt-get install chromium); CI runs this test",
)


def _repometer() -> list[str]:
    script = Path(sys.executable).with_name("repometer")
    return (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "from app.cli import main; main()"]
    )


def _wait_healthy(proc: subprocess.Popen, url: str, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the dashboard exited ({proc.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    pytest.fail(f"the dashboard did not become healthy in {timeout:.0f} s:\n{log.read_text()}")


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server's process group (the CLI and the Streamlit process it started)."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


def test_the_repository_page_renders_charts_in_chromium(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail("CI must run the browser test: /usr/bin/chromium is missing")
    from playwright.sync_api import sync_playwright

    env_data = build_store(tmp_path)
    port = free_port()
    log = tmp_path / "dashboard.log"
    env = {**os.environ, "REPOMETER_HOME": str(env_data.settings.home),
           "REPOMETER_DB_URL": env_data.url, "REPOMETER_WORKERS": "1"}  # fmt: skip
    env.pop("PREFECT_API_URL", None)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*_repometer(), "dashboard", "--port", str(port)], cwd=tmp_path, env=env,
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(proc, f"{base}/_stcore/health", log)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM),
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--no-first-run"],
            )  # fmt: skip
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"{base}/repository?repo=alpha", timeout=60_000)
                page.wait_for_selector("h1:has-text('alpha')", timeout=60_000)
                page.wait_for_selector(RENDERED, timeout=60_000)
                # every chart of the catalogue drawn (vega-embed renders a canvas or an svg)
                page.wait_for_function(
                    f'() => document.querySelectorAll("{RENDERED}").length >= 10', timeout=60_000
                )
                assert page.locator("[data-testid='stException']").count() == 0
                body = page.inner_text("body")
                for text in ("alpha", "Commits per month", "Hotspots", "Languages"):
                    assert text in body, text
                # Streamlit scrolls inside its main block: grow the viewport to the content
                height = page.evaluate(
                    "() => Math.max(document.body.scrollHeight, ...Array.from(document"
                    ".querySelectorAll('[data-testid=stMain], [data-testid=stAppViewContainer]'),"
                    " e => e.scrollHeight))"
                )
                page.set_viewport_size({"width": 1400, "height": min(int(height), 8000)})
                page.wait_for_function(
                    f'() => document.querySelectorAll("{RENDERED}").length >= 10', timeout=30_000
                )
                page.wait_for_timeout(1000)  # the resized charts redraw
                SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SCREENSHOT), full_page=True)
                # a warm page of cached results is usable in a few seconds (about 2.5 s here)
                started = time.monotonic()
                page.reload()
                page.wait_for_selector("h1:has-text('alpha')", timeout=30_000)
                page.wait_for_function(
                    f'() => document.querySelectorAll("{RENDERED}").length >= 10', timeout=30_000
                )
                seconds = time.monotonic() - started
                print(f"Repository page with every chart drawn in {seconds:.1f} s")
                assert seconds < 10, seconds
            finally:
                browser.close()
    finally:
        _stop(proc)
    assert proc.poll() is not None
    # every result was cached: showing them started no run
    engine = sa.create_engine(env_data.url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar() == 0
    finally:
        engine.dispose()
    assert SCREENSHOT.stat().st_size > 50_000  # a page of charts, not a blank one
