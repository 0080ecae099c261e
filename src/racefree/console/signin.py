"""Signing in and out of the console.

The sign-in form is itself protected against cross-site posting: GET sets a
short-lived random pre-sign-in cookie (HttpOnly, SameSite=Strict, only for this
path) and the form carries its HMAC. A successful sign-in sets the console
session cookie: HttpOnly, SameSite=Strict, path ``/console``, Secure over HTTPS,
12 hours; the operator token goes no further than this request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from racefree.console import pages, paths, sessions
from racefree.console.forms import CsrfField, Secret
from racefree.console.web import (
    COOKIE,
    LOGIN_COOKIE,
    SECURITY_HEADERS,
    Console,
    check_csrf,
    render,
    runtime_of,
    signed_in,
)
from racefree.core.db import Tx
from racefree.core.errors import RacefreeError

router = APIRouter()
LOGIN_COOKIE_MAX_AGE = 3600
STALE_FORM = "The sign-in form expired or came from elsewhere: nothing was sent. Try again."


def _login_page(request: Request, status_code: int, message: str | None, kind: str) -> Response:
    nonce = sessions.login_nonce()
    response = render(
        "login.html",
        status_code,
        title="Sign in",
        operator=None,
        login_csrf=sessions.csrf_token(nonce),
        message=message,
        message_kind=kind,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=LOGIN_COOKIE_MAX_AGE,
        path=paths.LOGIN,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.api_route(paths.LOGIN, methods=pages.READ)
def login_form(request: Request, signed_out: bool = False) -> Response:
    message = "You are signed out." if signed_out else None
    return _login_page(request, 200, message, "ok")


@router.post(paths.LOGIN)
def login(request: Request, csrf_token: CsrfField = "", operator_token: Secret = "") -> Response:
    if not sessions.csrf_valid(request.cookies.get(LOGIN_COOKIE), csrf_token):
        return _login_page(request, 403, STALE_FORM, "error")
    runtime = runtime_of(request)
    now = runtime.clock.now()
    try:
        with runtime.db.write() as tx:
            done = sessions.sign_in(tx, operator_token.strip(), now=now)
            _end_previous(tx, request.cookies.get(COOKIE), now=now)
    except RacefreeError:
        return _login_page(request, 401, "That is not a valid operator token.", "error")
    response = RedirectResponse(paths.OVERVIEW, status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(
        COOKIE,
        done.token,
        max_age=sessions.LIFETIME_S,
        path=paths.PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(LOGIN_COOKIE, path=paths.LOGIN)
    return response


def _end_previous(tx: Tx, cookie_token: str | None, *, now: int) -> None:
    """Signing in again in one browser ends the session its old cookie held."""
    if not cookie_token:
        return
    try:
        previous = sessions.authenticate(tx, cookie_token, now=now)
    except RacefreeError:
        return  # nothing live to end
    sessions.sign_out(tx, previous, now=now)


@router.post(paths.LOGOUT)
def logout(console: Annotated[Console, Depends(signed_in)], csrf_token: CsrfField = "") -> Response:
    check_csrf(console, csrf_token)
    with console.runtime.db.write() as tx:
        sessions.sign_out(tx, console.operator, now=console.now())
    response = RedirectResponse(
        f"{paths.LOGIN}?signed_out=1", status_code=303, headers=SECURITY_HEADERS
    )
    response.delete_cookie(COOKIE, path=paths.PREFIX)
    return response
