"""A thin page driver for the console tests: sign-in, screenshots, axe-core, CSP errors."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from racefree.testing import Server

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")
SERIOUS = ("serious", "critical")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@dataclass
class Console:
    """One browser context (its own cookies) on a server's console."""

    context: Any
    page: Any
    server: Server
    shots: Path
    name: str
    javascript: bool = True
    csp_errors: list[str] = field(default_factory=list)
    _shot_count: int = 0

    @classmethod
    def open(
        cls,
        browser: Any,
        server: Server,
        shots: Path,
        name: str,
        *,
        javascript: bool = True,
        viewport: dict[str, int] | None = None,
    ) -> Console:
        context = browser.new_context(
            base_url=server.base_url,
            java_script_enabled=javascript,
            viewport=viewport or DESKTOP,
        )
        context.set_default_timeout(15_000)
        page = context.new_page()
        ui = cls(context, page, server, shots, re.sub(r"[^A-Za-z0-9_.-]+", "_", name), javascript)
        page.on("console", ui._on_console)
        return ui

    def _on_console(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.csp_errors.append(message.text)

    def close(self) -> None:
        self.context.close()

    # -- actions -----------------------------------------------------------------------

    def sign_in(self, token: str | None = None) -> None:
        self.page.goto("/console/login")
        self.page.get_by_label("Operator token").fill(token or self.server.operator_token)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url("**/console")

    def button(self, name: str) -> Any:
        return self.page.get_by_role("button", name=name, exact=True)

    def state(self) -> str:
        text: str = self.page.get_by_test_id("kill-switch-state").inner_text()
        return text

    def notice(self, kind: str = "ok") -> str:
        text: str = self.page.get_by_test_id(f"notice-{kind}").inner_text()
        return text

    def agent_row(self, name: str) -> Any:
        return self.page.get_by_test_id("agents-table").get_by_role("row").filter(has_text=name)

    # -- evidence ----------------------------------------------------------------------

    def shot(self, label: str = "page") -> Path:
        """Save a full-page screenshot of the current page under the artifacts dir."""
        self.shots.mkdir(parents=True, exist_ok=True)
        self._shot_count += 1
        path = self.shots / f"{self.name}-{self._shot_count:02d}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def axe(self) -> list[dict[str, Any]]:
        """axe-core's serious and critical violations on the current page (must be none).

        axe is evaluated through the DevTools protocol, which the page's CSP does not
        govern; the app never serves it.
        """
        self.page.evaluate(AXE)
        result: dict[str, Any] = self.page.evaluate(
            "async () => await axe.run(document, {resultTypes: ['violations']})"
        )
        return [
            {"id": v["id"], "impact": v["impact"], "nodes": [n["html"] for n in v["nodes"]][:3]}
            for v in result["violations"]
            if v["impact"] in SERIOUS
        ]

    def check(self, label: str) -> None:
        """Screenshot, accessibility and CSP checks of the current page.

        axe needs script: with JavaScript off only the screenshot is taken (the same
        pages are checked with it on).
        """
        self.shot(label)
        if self.javascript:
            assert self.axe() == [], f"axe on {self.page.url}"
        assert self.csp_errors == [], self.csp_errors
