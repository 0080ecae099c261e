"""The console over HTTP (the real app, in process; both engines): the guard's allow-list,
sessions, CSRF, headers, and the domain functions it calls."""

from __future__ import annotations

import hashlib
import html
import re
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from racefree import agents, console, killswitch, operators
from racefree.console import paths, sessions
from racefree.console.pages import PAGE_SIZE
from racefree.core import audit
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.http import create_app
from racefree.runtime import Runtime
from racefree.testing import race

NEXT_PAGE = re.compile(r'<a href="([^"]+)">Next page</a>')
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


def login(client: TestClient, token: str) -> httpx.Response:
    """POST the sign-in form the way a browser does (its CSRF token from the form page)."""
    form = client.get(paths.LOGIN)
    login_csrf = CSRF.search(form.text)
    assert login_csrf is not None
    return client.post(
        paths.LOGIN,
        data={"csrf_token": login_csrf.group(1), "operator_token": token},
        follow_redirects=False,
    )


def sign_in(client: TestClient, token: str) -> str:
    """Sign in; return the CSRF token of the signed-in pages."""
    done = login(client, token)
    assert done.status_code == 303, done.text
    found = CSRF.search(client.get(paths.OVERVIEW).text)
    assert found is not None
    return found.group(1)


def console_routes() -> list[tuple[str, str]]:
    """Every (method, path) the console serves, walking included routers."""
    found: list[tuple[str, str]] = []

    def walk(routes: list[Any]) -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                found.extend((method, route.path) for method in route.methods)
            elif hasattr(route, "original_router"):  # FastAPI's lazily included router
                walk(route.original_router.routes)

    walk(console.router.routes)
    return found


def test_the_allow_list_names_exactly_the_pages_and_kill_switch_actions() -> None:
    routes = console_routes()
    assert len(routes) > 20
    allowed_posts = {p for m, p in routes if m == "POST" and console.allowed_while_locked(m, p)}
    assert allowed_posts == {
        "/console/login",
        "/console/logout",
        "/console/kill-switch/activate",
        "/console/kill-switch/recovery",
        "/console/kill-switch/recovery/complete",
        "/console/kill-switch/recovery/abort",
    }
    # every other action is guarded, and so is anything else under /console
    for method, path in [
        ("POST", "/console/agents/a1/suspend"),
        ("POST", "/console/agents/a1/activate"),
        ("POST", "/console/agents/a1/deposit"),
        ("POST", "/console/sessions/s1/revoke"),
        ("POST", "/console/transactions/t1/reject"),
        ("POST", "/console/plan-groups/g1/generate"),
        ("GET", "/console/anything-else"),
        ("GET", "/console/static/other.js"),
        ("DELETE", "/console/kill-switch/activate"),
        ("POST", "/console/agents"),
    ]:
        assert not console.allowed_while_locked(method, path), (method, path)
    for method, path in routes:
        if method in ("GET", "HEAD") and "{" not in path:
            assert console.allowed_while_locked(method, path), path


def test_while_engaged_pages_and_kill_switch_actions_serve_and_other_actions_are_refused(
    client: TestClient, operator_token: str, db: Database, clock: ManualClock
) -> None:
    csrf = sign_in(client, operator_token)
    with db.write() as tx:
        agent = agents.create(tx, name="courier", now=clock.now())
        killswitch.activate(tx, "incident", now=clock.now(), actor="operator:test")
    for path in (
        paths.OVERVIEW,
        paths.AGENTS,
        paths.SESSIONS,
        paths.TRANSACTIONS,
        paths.PLAN_GROUPS,
        paths.AUDIT,
        paths.EVENTS,
        paths.ACTIVATE,
        f"{paths.STATIC}/console.css",
        f"{paths.STATIC}/console.js",
    ):
        assert client.get(path).status_code == 200, path
        assert client.head(path).status_code == 200, path
    refused = client.post(f"/console/agents/{agent.id}/activate", data={"csrf_token": csrf})
    assert refused.status_code == 503
    assert refused.headers["content-type"].startswith("text/html")
    assert "the kill switch is ACTIVATED (reason: incident)" in refused.text
    deposit = client.post(
        f"/console/agents/{agent.id}/deposit", data={"csrf_token": csrf, "amount": "500"}
    )
    assert deposit.status_code == 503
    with db.read() as tx:  # refused means nothing changed, not only a 503 afterwards
        after = agents.get(tx, agent.id)
        assert (after.status, after.balance) == ("SUSPENDED", 0)
        assert audit.entries(tx, event_type="AGENT_ACTIVATED") == []
        assert audit.entries(tx, event_type="AGENT_DEPOSIT") == []
    wrong = client.post(paths.RECOVERY, data={"csrf_token": csrf, "master_password": "nope"})
    assert wrong.status_code == 401  # served by the console, refused by the domain
    assert "Wrong master password" in wrong.text


def test_pages_carry_a_strict_content_security_policy_and_nothing_inline(
    client: TestClient, operator_token: str
) -> None:
    login = client.get(paths.LOGIN)
    sign_in(client, operator_token)
    for response in (login, client.get(paths.OVERVIEW), client.get(paths.AUDIT)):
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "style-src 'self'" in csp
        assert "default-src 'none'" in csp
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert not re.search(r"<script(?![^>]*\bsrc=)", response.text)
        assert " style=" not in response.text
        assert "<style" not in response.text
        assert "http://" not in response.text and "https://" not in response.text


def test_the_session_cookie_is_http_only_strict_and_only_its_hash_is_stored(
    client: TestClient, operator_token: str, db: Database
) -> None:
    done = login(client, operator_token)
    cookie = next(
        h for h in done.headers.get_list("set-cookie") if h.startswith("racefree_console=")
    )
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/console", "max-age=43200"} <= attributes
    assert value.startswith(sessions.TOKEN_PREFIX)
    with db.read() as tx:
        rows = tx.all("SELECT * FROM console_sessions")
    assert len(rows) == 1
    assert rows[0]["token_hash"] == hashlib.sha256(value.encode()).hexdigest()
    assert value not in str(rows) and operator_token not in str(rows)


def test_a_console_session_ends_after_12_hours(
    client: TestClient, operator_token: str, clock: ManualClock
) -> None:
    sign_in(client, operator_token)
    clock.advance(sessions.LIFETIME_S - 1)
    assert client.get(paths.OVERVIEW, follow_redirects=False).status_code == 200
    clock.advance(1)
    expired = client.get(paths.OVERVIEW, follow_redirects=False)
    assert (expired.status_code, expired.headers["location"]) == (303, paths.LOGIN)


def test_sign_out_ends_the_session_for_every_copy_of_the_cookie(
    client: TestClient, operator_token: str
) -> None:
    csrf = sign_in(client, operator_token)
    stolen = client.cookies.get("racefree_console")
    assert client.post(paths.LOGOUT, data={"csrf_token": csrf}).status_code == 200
    client.cookies.set("racefree_console", str(stolen), path="/console")
    replayed = client.get(paths.OVERVIEW, follow_redirects=False)
    assert replayed.status_code == 303
    again = client.post(paths.LOGOUT, data={"csrf_token": csrf}, follow_redirects=False)
    assert again.status_code == 401


def test_sign_in_needs_the_form_of_this_browser(client: TestClient, operator_token: str) -> None:
    forged = client.post(
        paths.LOGIN, data={"csrf_token": "0" * 64, "operator_token": operator_token}
    )
    assert forged.status_code == 403
    assert client.cookies.get("racefree_console") is None


@pytest.mark.parametrize(
    ("reason", "status"),
    [("", 400), ("   ", 400), ("bad\x00reason", 400), ("fine\treason\nwith lines", 200)],
)
def test_activation_needs_a_plain_reason(
    client: TestClient, operator_token: str, db: Database, reason: str, status: int
) -> None:
    csrf = sign_in(client, operator_token)
    response = client.post(paths.ACTIVATE, data={"csrf_token": csrf, "reason": reason})
    assert response.status_code == status, response.text
    with db.read() as tx:
        assert killswitch.read(tx).state == ("ACTIVATED" if status == 200 else "NORMAL")


def test_bad_amounts_and_unknown_ids_are_explained_not_500(
    client: TestClient, operator_token: str, db: Database, clock: ManualClock
) -> None:
    csrf = sign_in(client, operator_token)
    with db.write() as tx:
        agent = agents.create(tx, name="courier", now=clock.now())
    for amount in ("abc", "0", "-5", "9" * 17):
        response = client.post(
            f"/console/agents/{agent.id}/deposit", data={"csrf_token": csrf, "amount": amount}
        )
        assert response.status_code == 400, (amount, response.text)
        assert "Not done:" in response.text
    missing = client.post("/console/agents/no-such-agent/suspend", data={"csrf_token": csrf})
    assert missing.status_code == 404
    assert "Agent not found" in missing.text or "agent" in missing.text.lower()
    too_long = client.post(paths.ACTIVATE, data={"csrf_token": csrf, "reason": "x" * 1001})
    assert too_long.status_code == 400


def test_next_page_keeps_the_filter_and_shows_the_rest(
    client: TestClient, operator_token: str, db: Database, clock: ManualClock
) -> None:
    sign_in(client, operator_token)
    with db.write() as tx:
        made = [
            agents.create(tx, name=f"agent-{n:03}", now=clock.now()).id
            for n in range(PAGE_SIZE + 1)
        ]
    first = client.get(paths.AGENTS, params={"status": "ACTIVE"})
    link = NEXT_PAGE.search(first.text)
    assert link is not None
    href = html.unescape(link.group(1))
    assert href == f"{paths.AGENTS}?status=ACTIVE&after_id={made[PAGE_SIZE - 1]}"
    second = client.get(href)
    assert second.status_code == 200
    assert made[PAGE_SIZE] in second.text and made[PAGE_SIZE] not in first.text
    assert made[0] in first.text and made[0] not in second.text
    assert NEXT_PAGE.search(second.text) is None  # the last page offers no further one


def test_the_audit_filter_takes_any_case_and_refuses_junk_without_an_error_page(
    client: TestClient, operator_token: str
) -> None:
    sign_in(client, operator_token)
    found = client.get(paths.AUDIT, params={"type": "console_signed_in", "severity": "warning"})
    assert found.status_code == 200
    assert found.text.count('<tr class="sev-warning">') == 1
    refused = client.get(paths.AUDIT, params={"type": "DROP TABLE; --"})
    assert refused.status_code == 400
    assert "Event types are upper-case letters" in refused.text
    assert client.get(paths.EVENTS, params={"type": "DROP TABLE; --"}).status_code == 200
    # control characters never reach the console: the HTTP edge refuses them first
    assert client.get(paths.AUDIT, params={"type": "bad\x00type"}).status_code == 400


def test_two_operators_suspending_one_agent_at_once_make_one_change_and_name_the_winner(
    runtime: Runtime, db: Database, clock: ManualClock
) -> None:
    with db.write() as tx:
        tokens = [operators.create_token(tx, label=n, now=clock.now()) for n in ("ann", "ben")]
        agent = agents.create(tx, name="courier", now=clock.now())
    app = create_app(runtime)
    with TestClient(app) as first, TestClient(app) as second:
        clients = [first, second]
        forms = [sign_in(c, t) for c, t in zip(clients, tokens, strict=True)]
        outcomes = race(
            2,
            lambda i: clients[i].post(
                f"/console/agents/{agent.id}/suspend", data={"csrf_token": forms[i]}
            ),
        )
    responses = [o.value for o in outcomes]
    assert sorted(r.status_code for r in responses) == [200, 409]
    [lost] = [r for r in responses if r.status_code == 409]
    with db.read() as tx:
        [row] = [e for e in audit.entries(tx, event_type="AGENT_SUSPENDED")]
    assert row.details["via"] == "console"
    assert f"Last change: AGENT_SUSPENDED by {row.actor} at " in lost.text


def test_a_second_recovery_start_names_who_started_it_and_when_it_can_complete(
    client: TestClient, operator_token: str, db: Database, clock: ManualClock
) -> None:
    operators.bootstrap(db, master_password="pw-for-tests", now=clock.now())
    csrf = sign_in(client, operator_token)
    killswitch.activate_now(db, "drill", now=clock.now(), actor="operator:test")
    form = {"csrf_token": csrf, "master_password": "pw-for-tests"}
    assert client.post(paths.RECOVERY, data=form).status_code == 200
    again = client.post(paths.RECOVERY, data=form)
    assert again.status_code == 409
    assert re.search(
        r"Recovery was already started: it can complete at \d\d:\d\d:\d\d UTC\."
        r" Last change: KILL_SWITCH_RECOVERY_STARTED by operator:test at \d\d:\d\d:\d\d UTC\.",
        again.text,
    ), again.text
    early = client.post(paths.RECOVERY_COMPLETE, data=form)
    assert early.status_code == 409
    assert "Too early: recovery can complete at" in early.text


def test_five_operators_confirming_activation_at_once_make_one_and_four_are_told_who_won(
    runtime: Runtime, db: Database, clock: ManualClock
) -> None:
    labels = [f"op{i}" for i in range(5)]
    with db.write() as tx:
        tokens = [operators.create_token(tx, label=label, now=clock.now()) for label in labels]
    app = create_app(runtime)
    clients = [TestClient(app) for _ in labels]
    try:
        forms = [sign_in(c, t) for c, t in zip(clients, tokens, strict=True)]
        outcomes = race(
            5,
            lambda i: clients[i].post(
                paths.ACTIVATE, data={"csrf_token": forms[i], "reason": f"reason {labels[i]}"}
            ),
        )
    finally:
        for c in clients:
            c.close()
    responses = [o.value for o in outcomes]
    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409, 409]
    with db.read() as tx:
        [row] = audit.entries(tx, event_type="KILL_SWITCH_ACTIVATED")
        state = killswitch.read(tx)
    winner = str(row.actor).removeprefix("operator:")
    assert (state.actor, state.reason) == (row.actor, f"reason {winner}")
    for lost in (r for r in responses if r.status_code == 409):
        assert f"already activated by operator:{winner} at " in lost.text
        assert f"reason: reason {winner}." in lost.text


def test_signing_in_again_ends_the_old_session_and_a_deleted_operator_ends_theirs(
    client: TestClient, operator_token: str, db: Database
) -> None:
    sign_in(client, operator_token)
    first = client.cookies.get("racefree_console")
    sign_in(client, operator_token)
    with db.read() as tx:
        live = tx.scalar("SELECT COUNT(*) FROM console_sessions WHERE ended_at IS NULL")
    assert live == 1
    client.cookies.set("racefree_console", str(first), path="/console")
    assert client.get(paths.OVERVIEW, follow_redirects=False).status_code == 303
    sign_in(client, operator_token)
    with db.write() as tx:
        tx.execute("DELETE FROM operators")
    assert client.get(paths.OVERVIEW, follow_redirects=False).status_code == 303
    with db.read() as tx:  # ON DELETE CASCADE took the operator's console sessions along
        assert tx.scalar("SELECT COUNT(*) FROM console_sessions") == 0
