"""The browser tier's plumbing: Debian's Chromium driven by Playwright, screenshots kept.

Playwright never downloads a browser here: it launches ``/usr/bin/chromium`` (installed by
``scripts/install-test-services.sh``, which ``make test`` runs). Without it, or without the
``playwright`` package, the browser tests skip and say why. Screenshots go to
``$MLTRADE_SCREENSHOTS`` (default ``tests/.artifacts/screenshots``, git-ignored) as the tier's
artifacts; a failing test's last page is saved there too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("MLTRADE_CHROMIUM", "/usr/bin/chromium"))
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(
    os.environ.get("MLTRADE_SCREENSHOTS", REPO / "tests" / ".artifacts" / "screenshots")
)
# Headless in a container: no sandbox (often no user namespaces), /tmp instead of a small
# /dev/shm, no GPU.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]
VIEWPORT = {"width": 1400, "height": 900}


def skip_reason() -> str | None:
    """Why the browser tier cannot run here, or None."""
    if not CHROMIUM.exists():
        return (f"{CHROMIUM} is missing: `scripts/install-test-services.sh` installs Debian's "
                "chromium (needs root or sudo and the Debian registry)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing: `make install`"
    return None


@contextmanager
def chromium() -> Iterator[object]:
    """A headless Chromium (a Playwright ``Browser``), closed after the block."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page, name: str) -> Path:  # noqa: ANN001  (a Playwright Page)
    """Save the page as ``<SCREENSHOTS>/<name>.png`` and return the path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path
