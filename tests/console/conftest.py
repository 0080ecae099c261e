"""Browser fixtures: Playwright driving Debian's Chromium against a real server process.

The browser is ``/usr/bin/chromium`` (``RACEFREE_CHROMIUM`` overrides it); a
Playwright-downloaded build is never used. Without it the browser tests skip
with a reason -- unless ``RACEFREE_REQUIRE_BROWSER=1`` (CI), which makes that a
failure.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from racefree import operators
from racefree.core.db import Database
from racefree.testing import Server, start_server
from tests.console.browser import Console

CHROMIUM = os.environ.get("RACEFREE_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("RACEFREE_SCREENSHOT_DIR", Path(__file__).parent / "screenshots"))


def _unavailable(reason: str) -> None:
    if os.environ.get("RACEFREE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"RACEFREE_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """One browser per test module; Playwright's sync API keeps an event loop running in
    this thread while it is open, so it must be closed before other modules run theirs."""
    if not Path(CHROMIUM).exists():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - the dev extra installs it
        _unavailable(f"playwright is not installed: {exc}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield browser
        browser.close()


@pytest.fixture
def console_server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    """A real server; recovery waits 0 s so a test can start and complete it."""
    server = start_server(db_url, tmp_path, env={"RACEFREE_RECOVERY_WAIT_S": "0"})
    yield server
    server.stop()


@pytest.fixture
def console(
    chromium: object, console_server: Server, request: pytest.FixtureRequest
) -> Iterator[Console]:
    """A signed-out browser page on the console (desktop width)."""
    ui = Console.open(chromium, console_server, SCREENSHOTS, request.node.name)
    yield ui
    ui.close()


@pytest.fixture
def second_operator(db_url: str) -> str:
    """Another operator's token (label ``bob``), as ``racefree operator create-token`` makes."""
    with Database.from_url(db_url) as db, db.write() as tx:
        return operators.create_token(tx, label="bob", now=int(time.time()))
