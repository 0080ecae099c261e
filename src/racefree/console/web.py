"""Rendering and request plumbing shared by the console's routes.

* templates (Jinja2, autoescaped, shipped in the package) and the security
  headers of every console response: a strict Content-Security-Policy (scripts
  and styles from the console's own static files only, nothing inline, nothing
  from the network), no framing, no caching, no referrer;
* the signed-in operator (:func:`signed_in`), the CSRF check of every form POST
  (:func:`check_csrf`), and :func:`via_console`, which marks the audit rows of
  the changes a console action makes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from racefree.console import paths, sessions
from racefree.console.sessions import ConsoleOperator
from racefree.core import context
from racefree.core.errors import Code, GeneralCode, RacefreeError
from racefree.killswitch import status
from racefree.killswitch.status import KillSwitchStatus
from racefree.runtime import Runtime

COOKIE = "racefree_console"
LOGIN_COOKIE = "racefree_console_login"
CSRF_FIELD = "csrf_token"
VIA = "console"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def clock_time(epoch: int | None) -> str:
    """``09:14:03 UTC``: short enough to read aloud in an incident call."""
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S UTC")


def stamp(epoch: int | None) -> str:
    """``2026-11-30 09:14:03 UTC``."""
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("racefree.console", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["clock"] = clock_time
    env.filters["stamp"] = stamp
    env.globals["paths"] = paths
    return env


TEMPLATES = _environment()


class NotSignedIn(Exception):
    """No live console session: pages redirect to sign-in, actions answer 401."""


class CsrfRefused(Exception):
    """A form POST without this session's CSRF token."""


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def html(body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status_code, headers=SECURITY_HEADERS)


def render(template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    return html(TEMPLATES.get_template(template).render(**values), status_code)


@dataclass
class Notice:
    """A line at the top of a page: what an action did, or why it did not."""

    text: str
    kind: str = "ok"  # ok | error

    @property
    def role(self) -> str:
        return "alert" if self.kind == "error" else "status"


@dataclass
class Console:
    """One signed-in request: the operator, their CSRF token, and page rendering."""

    request: Request
    runtime: Runtime
    operator: ConsoleOperator
    cookie_token: str
    notices: list[Notice] = field(default_factory=list)
    status_code: int = 200

    @property
    def csrf(self) -> str:
        return sessions.csrf_token(self.cookie_token)

    def now(self) -> int:
        return self.runtime.clock.now()

    def kill_switch(self) -> KillSwitchStatus:
        with self.runtime.db.read() as tx:
            return status.read(tx)

    def tell(self, text: str) -> None:
        self.notices.append(Notice(text))

    def refuse(self, text: str, status_code: int) -> None:
        self.notices.append(Notice(text, "error"))
        self.status_code = status_code

    def attempt(
        self,
        csrf: str,
        change: Callable[[], str],
        explain: Callable[[RacefreeError], str],
    ) -> None:
        """Run ``change`` (CSRF checked first, audit rows ``via: console``); tell the outcome."""
        check_csrf(self, csrf)
        try:
            with via_console():
                self.tell(change())
        except RacefreeError as refused:
            self.refuse(explain(refused), form_status(refused))

    def page(self, template: str, *, title: str, nav: str, **values: Any) -> HTMLResponse:
        switch = self.kill_switch()
        return render(
            template,
            self.status_code,
            title=title,
            nav=nav,
            operator=self.operator,
            csrf=self.csrf,
            ks=switch,
            engaged=not switch.is_normal,
            now=self.now(),
            notices=self.notices,
            **values,
        )


#: A console form carries the version it showed in a field, not in an ``If-Match``
#: header: a stale form lost to another change, a conflict like the others (409).
_FORM_STATUS: dict[Code, int] = {GeneralCode.PRECONDITION_FAILED: 409}


def form_status(error: RacefreeError) -> int:
    """The status of the page that answers a refused console form."""
    return _FORM_STATUS.get(error.code, error.status)


def signed_in(request: Request) -> Console:
    """The request's console session (a FastAPI dependency); :class:`NotSignedIn` otherwise."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise NotSignedIn
    runtime = runtime_of(request)
    try:
        with runtime.db.read() as tx:
            operator = sessions.authenticate(tx, token, now=runtime.clock.now())
    except RacefreeError as refused:
        raise NotSignedIn from refused
    return Console(request, runtime, operator, token)


def check_csrf(console: Console, submitted: str | None) -> None:
    if not sessions.csrf_valid(console.cookie_token, submitted):
        raise CsrfRefused


@contextlib.contextmanager
def via_console() -> Iterator[None]:
    """Audit rows written inside carry ``via: console``."""
    token = context.via.set(VIA)
    try:
        yield
    finally:
        context.via.reset(token)


def on_not_signed_in(request: Request, _exc: Exception) -> Response:
    if request.method in ("GET", "HEAD"):
        response: Response = RedirectResponse(paths.LOGIN, status_code=303)
        response.headers.update(SECURITY_HEADERS)
    else:
        response = render(
            "refused.html",
            401,
            title="Sign in required",
            message="Your console session is not valid (signed out, expired, or never signed in).",
        )
    if request.cookies.get(COOKIE):
        response.delete_cookie(COOKIE, path=paths.PREFIX)
    return response


def on_csrf_refused(_request: Request, _exc: Exception) -> Response:
    return render(
        "refused.html",
        403,
        title="Form refused",
        message="This form was not sent by a console page of your session (CSRF check failed)."
        " Nothing was changed. Reload the page and try again.",
    )


def locked_response(error: RacefreeError) -> Response:
    """The guard's refusal of a console action while the kill switch is engaged, as a page."""
    details = error.details
    return render(
        "refused.html",
        error.status,
        title="Kill switch engaged",
        message=f"Refused: the kill switch is {details.get('state')} (reason: "
        f"{details.get('reason')}). Only the console's pages and kill-switch actions work"
        " until recovery completes. Reload the page to see the current state.",
    )
