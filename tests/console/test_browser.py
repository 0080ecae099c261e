"""The console in a real browser (Chromium through Playwright) against a real server.

Every test saves screenshots of its pages and runs axe-core on them. Most run
on SQLite; the race of two operators pressing "Confirm activation" together
runs on both engines.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from racefree.testing import Server, start_server
from tests.console.browser import PHONE, Console
from tests.console.conftest import SCREENSHOTS
from tests.events.receiver import Receiver, always

pytestmark = [pytest.mark.server, pytest.mark.browser]
sqlite_only = pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
PAGES = (
    "/console",
    "/console/agents",
    "/console/sessions",
    "/console/transactions",
    "/console/plan-groups",
    "/console/audit",
    "/console/rules",
    "/console/webhooks",
)


def api(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers=server.operator_headers(), timeout=30)


def make_agent(server: Server, name: str, *, balance: int = 0) -> str:
    with api(server) as client:
        created = client.post("/v1/agents", json={"name": name})
        assert created.status_code == 201, created.text
        agent_id = str(created.json()["id"])
        if balance:
            deposit = client.post(f"/v1/agents/{agent_id}/deposit", json={"amount": str(balance)})
            assert deposit.status_code == 200, deposit.text
    return agent_id


def open_session(server: Server, agent_id: str) -> dict[str, Any]:
    with api(server) as client:
        opened = client.post("/v1/sessions", json={"agent_id": agent_id})
    assert opened.status_code == 201, opened.text
    body: dict[str, Any] = opened.json()
    return body


def audit(server: Server, event_type: str) -> list[dict[str, Any]]:
    with api(server) as client:
        found = client.get("/v1/audit-log", params={"event_type": event_type, "limit": 1000})
    assert found.status_code == 200, found.text
    entries: list[dict[str, Any]] = found.json()["entries"]
    return entries


def kill_switch(server: Server) -> dict[str, Any]:
    with api(server) as client:
        body: dict[str, Any] = client.get("/v1/kill-switch").json()
    return body


def activate_through_api(server: Server, reason: str = "drill") -> None:
    with api(server) as client:
        assert client.post("/v1/kill-switch/activate", json={"reason": reason}).status_code == 200


def activate_in(ui: Console, reason: str) -> None:
    ui.page.goto("/console")
    ui.button("Activate kill switch").click()
    ui.page.get_by_label("Reason").fill(reason)


# -- sign-in ---------------------------------------------------------------------------


@sqlite_only
def test_sign_in_shows_normal_and_sign_out_ends_the_session(console: Console) -> None:
    console.page.goto("/console/agents")
    assert console.page.url.endswith("/console/login")  # signed out: sent to sign in
    console.check("login")
    console.sign_in()
    assert console.state() == "NORMAL"
    console.check("overview-normal")

    [cookie] = [c for c in console.context.cookies() if c["name"] == "racefree_console"]
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/console")
    assert cookie["value"].startswith("rf_con_")
    assert console.server.operator_token not in cookie["value"]
    [signed_in] = audit(console.server, "CONSOLE_SIGNED_IN")
    assert signed_in["actor"] == "operator:first-start"

    console.button("Sign out").click()
    console.page.wait_for_url("**/console/login?signed_out=1")
    assert "You are signed out." in console.page.content()
    console.check("signed-out")
    # the old cookie is dead server-side too, not just deleted from this browser
    console.context.add_cookies(
        [{"name": cookie["name"], "value": cookie["value"], "url": console.server.base_url}]
    )
    console.page.goto("/console")
    assert console.page.url.endswith("/console/login")
    assert len(audit(console.server, "CONSOLE_SIGNED_OUT")) == 1


@sqlite_only
def test_a_wrong_or_non_operator_token_does_not_sign_in(console: Console) -> None:
    agent_id = make_agent(console.server, "agent-1")
    session_token = open_session(console.server, agent_id)["token"]
    for token in ("rf_op_not-a-token", session_token):
        console.page.goto("/console/login")
        console.page.get_by_label("Operator token").fill(token)
        console.button("Sign in").click()
        assert "That is not a valid operator token." in console.notice("error")
    console.check("refused-token")
    assert [c["name"] for c in console.context.cookies()] == ["racefree_console_login"]


@sqlite_only
def test_a_non_operator_cookie_is_refused(console: Console) -> None:
    agent_id = make_agent(console.server, "agent-1")
    session_token = open_session(console.server, agent_id)["token"]
    for value in (session_token, console.server.operator_token, "rf_con_forged"):
        console.context.clear_cookies()
        console.context.add_cookies(
            [{"name": "racefree_console", "value": value, "url": console.server.base_url}]
        )
        console.page.goto("/console")
        assert console.page.url.endswith("/console/login"), value
        refused = console.context.request.post(
            "/console/kill-switch/activate", form={"reason": "x", "csrf_token": "x"}
        )
        assert refused.status == 401
    console.check("cookie-refused")
    assert kill_switch(console.server)["state"] == "NORMAL"


# -- the kill switch -------------------------------------------------------------------


@sqlite_only
def test_activation_with_a_reason_works_with_javascript_off_and_the_api_agrees(
    chromium: Any, console_server: Server, request: pytest.FixtureRequest
) -> None:
    ui = Console.open(chromium, console_server, SCREENSHOTS, request.node.name, javascript=False)
    try:
        ui.sign_in()
        activate_in(ui, "card fraud spike")
        ui.check("confirm")
        ui.button("Confirm activation").click()
        assert ui.state() == "ACTIVATED"
        assert "Kill switch activated" in ui.notice()
        assert ui.page.get_by_test_id("kill-switch-reason").inner_text() == "card fraud spike"
        assert ui.page.get_by_test_id("kill-switch-actor").inner_text() == "operator:first-start"
        ui.check("activated")
    finally:
        ui.close()
    state = kill_switch(console_server)
    assert (state["state"], state["reason"], state["actor"]) == (
        "ACTIVATED",
        "card fraud spike",
        "operator:first-start",
    )
    [row] = audit(console_server, "KILL_SWITCH_ACTIVATED")
    assert row["details"]["via"] == "console"
    assert row["actor"] == "operator:first-start"


def test_two_operators_confirming_together_make_one_activation(
    chromium: Any, console_server: Server, second_operator: str, request: pytest.FixtureRequest
) -> None:
    alice = Console.open(chromium, console_server, SCREENSHOTS, request.node.name + "-first")
    bob = Console.open(chromium, console_server, SCREENSHOTS, request.node.name + "-bob")
    try:
        alice.sign_in()
        bob.sign_in(second_operator)
        activate_in(alice, "reason of first-start")
        activate_in(bob, "reason of bob")
        with alice.page.expect_navigation(), bob.page.expect_navigation():
            alice.button("Confirm activation").click(no_wait_after=True)
            bob.button("Confirm activation").click(no_wait_after=True)
        [row] = audit(console_server, "KILL_SWITCH_ACTIVATED")  # exactly one activation
        winner, loser = (alice, bob) if row["actor"] == "operator:first-start" else (bob, alice)
        assert "Kill switch activated" in winner.notice()
        said = loser.notice("error")
        label = row["actor"].removeprefix("operator:")
        assert re.fullmatch(
            rf"Not activated: already activated by operator:{label} at \d\d:\d\d:\d\d UTC"
            rf" — reason: reason of {label}\.",
            said,
        ), said
        for ui in (winner, loser):
            assert ui.state() == "ACTIVATED"
            ui.check("after-race")
    finally:
        alice.close()
        bob.close()
    assert kill_switch(console_server)["actor"] == row["actor"]


@sqlite_only
def test_recovery_refuses_a_wrong_master_password_then_completes(console: Console) -> None:
    agent_id = make_agent(console.server, "agent-1")
    activate_through_api(console.server)
    console.sign_in()
    assert console.state() == "ACTIVATED"
    console.check("activated")

    console.page.get_by_label("Master password").fill("wrong password")
    console.button("Start recovery").click()
    assert "Wrong master password. 4 attempt(s) left" in console.notice("error")
    assert console.state() == "ACTIVATED"
    assert console.page.get_by_label("Master password").input_value() == ""  # never echoed
    console.check("wrong-password")

    console.page.get_by_label("Master password").fill(console.server.master_password)
    console.button("Start recovery").click()
    assert console.state() == "RECOVERING"
    assert "Recovery started" in console.notice()
    assert console.page.get_by_test_id("recovery-countdown").inner_text() == "eligible now"
    console.check("recovering")

    console.page.get_by_label("Master password").fill(console.server.master_password)
    console.button("Complete recovery").click()
    assert console.state() == "NORMAL"
    assert "Recovery complete: 1 agents re-activated" in console.notice()
    console.check("recovered")

    assert kill_switch(console.server)["state"] == "NORMAL"
    with api(console.server) as client:
        assert client.get(f"/v1/agents/{agent_id}").json()["status"] == "ACTIVE"
    [started] = audit(console.server, "KILL_SWITCH_RECOVERY_STARTED")
    assert (started["actor"], started["details"]["via"]) == ("operator:first-start", "console")
    [rejected] = audit(console.server, "MASTER_PASSWORD_REJECTED")
    assert rejected["details"]["via"] == "console"
    html = console.page.content() + Path(console.server.log_path).read_text()
    assert console.server.master_password not in html


@sqlite_only
def test_recovery_can_be_aborted_with_javascript_off_and_a_stale_tab_is_told_why(
    chromium: Any, console_server: Server, request: pytest.FixtureRequest
) -> None:
    activate_through_api(console_server, "abort drill")
    ui = Console.open(chromium, console_server, SCREENSHOTS, request.node.name, javascript=False)
    try:
        ui.sign_in()
        ui.page.get_by_label("Master password").fill(console_server.master_password)
        ui.button("Start recovery").click()
        assert ui.state() == "RECOVERING"
        stale = ui.context.new_page()  # a second tab still showing RECOVERING
        stale.goto("/console")
        ui.page.get_by_label("Master password").fill(console_server.master_password)
        ui.button("Abort recovery").click()
        assert ui.state() == "ACTIVATED"
        assert "Recovery aborted" in ui.notice()
        ui.check("aborted")
        stale.get_by_label("Master password").fill(console_server.master_password)
        stale.get_by_role("button", name="Complete recovery").click()
        said = stale.get_by_test_id("notice-error").inner_text()
        assert re.fullmatch(
            r"Nothing to do: the kill switch is ACTIVATED \(activated by operator:first-start"
            r" at \d\d:\d\d:\d\d UTC\)\. Last change: KILL_SWITCH_RECOVERY_ROLLED_BACK by"
            r" operator:first-start at \d\d:\d\d:\d\d UTC\.",
            said,
        ), said
        ui.page = stale
        ui.check("stale-tab-told")
    finally:
        ui.close()
    [rolled_back] = audit(console_server, "KILL_SWITCH_RECOVERY_ROLLED_BACK")
    assert (rolled_back["actor"], rolled_back["details"]["via"]) == (
        "operator:first-start",
        "console",
    )


# -- agents, sessions, transactions, plan groups ------------------------------------------


@sqlite_only
def test_agents_suspend_activate_and_deposit(console: Console) -> None:
    agent_id = make_agent(console.server, "courier-7")
    console.sign_in()
    console.page.goto("/console/agents")
    console.agent_row("courier-7").get_by_role("button", name="Suspend").click()
    assert console.notice() == "Suspended courier-7."
    assert "SUSPENDED" in console.agent_row("courier-7").inner_text()
    console.check("suspended")
    with api(console.server) as client:
        assert client.get(f"/v1/agents/{agent_id}").json()["status"] == "SUSPENDED"

    console.agent_row("courier-7").get_by_role("button", name="Activate").click()
    assert console.notice() == "Activated courier-7."
    console.agent_row("courier-7").get_by_label("Deposit amount for courier-7").fill("2500")
    console.agent_row("courier-7").get_by_role("button", name="Deposit").click()
    assert console.notice() == "Deposited 2500; the balance is 2500."
    console.check("activated")
    with api(console.server) as client:
        agent = client.get(f"/v1/agents/{agent_id}").json()
    assert (agent["status"], agent["balance"]) == ("ACTIVE", "2500")
    for event in ("AGENT_SUSPENDED", "AGENT_ACTIVATED", "AGENT_DEPOSIT"):
        [row] = audit(console.server, event)
        assert (row["actor"], row["details"]["via"]) == ("operator:first-start", "console")


@sqlite_only
def test_actions_are_disabled_with_the_reason_while_the_switch_is_engaged(
    console: Console,
) -> None:
    make_agent(console.server, "courier-7")
    console.sign_in()
    console.page.goto("/console/agents")
    csrf = console.page.locator("input[name=csrf_token]").first.input_value()
    activate_through_api(console.server, "incident 42")
    console.page.goto("/console/agents")
    assert "the kill switch is ACTIVATED (reason: incident 42)" in (
        console.page.get_by_test_id("locked-reason").inner_text()
    )
    assert console.agent_row("courier-7").get_by_role("button", name="Activate").is_disabled()
    console.check("locked-agents")
    # a stale page's form still posts: the guard refuses it, as a page
    agent_id = console.page.locator("tr[data-agent-id]").get_attribute("data-agent-id")
    refused = console.context.request.post(
        f"/console/agents/{agent_id}/activate", form={"csrf_token": csrf}
    )
    assert refused.status == 503
    assert "Refused: the kill switch is ACTIVATED (reason: incident 42)" in refused.text()


@sqlite_only
def test_revoking_a_session(console: Console) -> None:
    agent_id = make_agent(console.server, "agent-1")
    session_id = open_session(console.server, agent_id)["session_id"]
    console.sign_in()
    assert console.page.get_by_test_id("count-active-sessions").inner_text() == "1"
    console.page.goto("/console/sessions")
    row = console.page.locator(f"tr[data-session-id='{session_id}']")
    row.get_by_role("button", name="Revoke").click()
    assert console.notice() == f"Revoked session {session_id}."
    assert console.page.locator(f"tr[data-session-id='{session_id}']").count() == 0
    console.check("revoked")
    with api(console.server) as client:
        session = client.get(f"/v1/sessions/{session_id}").json()
    assert (session["revoked_at"] is not None, session["revoke_reason"]) == (True, "operator")


@sqlite_only
def test_rejecting_a_queued_approval(console: Console) -> None:
    agent_id = make_agent(console.server, "buyer", balance=1_000_000)
    token = open_session(console.server, agent_id)["token"]
    with httpx.Client(base_url=console.server.base_url, timeout=30) as client:
        queued = client.post(
            "/v1/transactions",
            json={"type": "TRANSFER", "amount": "60000", "destination": "acct:shop"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert (queued.status_code, queued.json()["tier"]) == (202, "APPROVAL")
    txn_id = queued.json()["transaction_id"]
    console.sign_in()
    assert console.page.get_by_test_id("count-approvals-waiting").inner_text() == "1"
    console.page.goto("/console/transactions")
    console.page.get_by_label("Status").select_option("QUEUED")
    console.page.get_by_label("Tier").select_option("APPROVAL")
    console.button("Filter").click()
    row = console.page.locator(f"tr[data-transaction-id='{txn_id}']")
    row.get_by_role("button", name="Reject").click()
    assert console.notice() == f"Rejected transaction {txn_id}: it is CANCELLED."
    console.check("rejected")
    with api(console.server) as client:
        assert client.get(f"/v1/transactions/{txn_id}").json()["status"] == "CANCELLED"
    [rejected] = audit(console.server, "TRANSACTION_REJECTED")
    assert rejected["transaction_id"] == txn_id
    assert (rejected["actor"], rejected["details"]["via"]) == ("operator:first-start", "console")


@sqlite_only
def test_plan_group_generation_from_the_console(console: Console) -> None:
    with api(console.server) as client:
        created = client.post(
            "/v1/plan-groups",
            json={
                "title": "Week 49",
                "start_date": "2026-11-30",
                "end_date": "2026-12-06",
                "items": [{"name": "walks", "units": 14}],
            },
        )
    assert created.status_code == 201, created.text
    group_id = created.json()["id"]
    console.sign_in()
    console.page.goto("/console/plan-groups")
    row = console.page.locator(f"tr[data-plan-group-id='{group_id}']")
    assert "free" in row.inner_text()
    row.get_by_role("button", name="Generate").click()
    assert console.notice().startswith("Generated 7 plans (generation 1")
    console.check("generated")


# -- audit -----------------------------------------------------------------------------


@sqlite_only
def test_the_audit_page_shows_the_activation_and_filters(console: Console) -> None:
    console.sign_in()
    activate_in(console, "audit drill")
    console.button("Confirm activation").click()
    console.page.goto("/console/audit")
    console.page.get_by_label("Severity").select_option("critical")
    console.page.get_by_label("Event type").fill("KILL_SWITCH_ACTIVATED")
    console.button("Filter").click()
    rows = console.page.get_by_test_id("audit-table").locator("tbody tr")
    assert rows.count() == 1
    text = rows.first.inner_text()
    assert "KILL_SWITCH_ACTIVATED" in text
    assert "operator:first-start" in text
    assert "reason=audit drill" in text
    assert "via=console" in text
    console.check("audit-filtered")


@sqlite_only
def test_new_warnings_appear_on_the_overview_without_a_reload(console: Console) -> None:
    agent_id = make_agent(console.server, "agent-1")
    session_id = open_session(console.server, agent_id)["session_id"]
    console.sign_in()
    events = console.page.get_by_test_id("recent-events")
    assert "SESSION_REVOKED" not in events.inner_text()
    with api(console.server) as client:
        assert client.delete(f"/v1/sessions/{session_id}").status_code == 200
    events.locator("tr", has_text="SESSION_REVOKED").wait_for(timeout=15_000)
    console.check("live-event")
    # signed out elsewhere: the page stops polling and says so, inserting nothing
    rows = events.locator("tbody tr").count()
    csrf = console.page.locator("input[name=csrf_token]").first.input_value()
    console.context.request.post("/console/logout", form={"csrf_token": csrf})
    console.page.get_by_text("Your console session ended: reload to sign in.").wait_for(
        timeout=15_000
    )
    assert events.locator("tbody tr").count() == rows


# -- CSRF -------------------------------------------------------------------------------


@sqlite_only
def test_forged_posts_are_refused(console: Console, tmp_path: Path) -> None:
    console.sign_in()
    # 1. the session's cookie with a wrong or missing CSRF token
    for form in ({"reason": "forged", "csrf_token": "0" * 64}, {"reason": "forged"}):
        refused = console.context.request.post("/console/kill-switch/activate", form=form)
        assert refused.status == 403
        assert "CSRF check failed" in refused.text()
    # 2. a form on another site posting to the console: the SameSite=Strict cookie stays home
    attacker = console.context.new_page()
    attacker.set_content(
        f'<form method="post" action="{console.server.base_url}/console/kill-switch/activate">'
        '<input name="reason" value="forged"><button>go</button></form>'
    )
    with attacker.expect_navigation():
        attacker.get_by_role("button", name="go").click()
    assert "Sign in required" in attacker.content()
    console.page.goto("/console")
    assert console.state() == "NORMAL"
    console.check("after-forgery")
    assert audit(console.server, "KILL_SWITCH_ACTIVATED") == []


# -- every page: accessibility and phone width --------------------------------------------


@sqlite_only
def test_every_page_is_accessible_and_fits_a_phone(
    chromium: Any, console_server: Server, request: pytest.FixtureRequest
) -> None:
    agent_id = make_agent(console_server, "courier-7", balance=100_000)
    open_session(console_server, agent_id)
    for viewport, label in ((None, "desktop"), (PHONE, "phone")):
        ui = Console.open(
            chromium, console_server, SCREENSHOTS, request.node.name, viewport=viewport
        )
        try:
            ui.sign_in()
            for path in PAGES:
                ui.page.goto(path)
                ui.check(f"{label}{path.replace('/', '-')}")
                if label == "phone":  # nothing wider than the screen but scrollable tables
                    width = ui.page.evaluate("document.documentElement.scrollWidth")
                    assert width <= PHONE["width"], (path, width)
            ui.page.goto("/console/kill-switch/activate")
            ui.check(f"{label}-activate")
        finally:
            ui.close()


# -- auto-stop rules and webhooks ------------------------------------------------------------


@pytest.fixture
def failing_receiver() -> Iterator[Receiver]:
    """A real webhook receiver on 127.0.0.1 that answers every delivery with 503."""
    with Receiver(always(503)) as receiver:
        yield receiver


@pytest.fixture
def webhook_server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    """A real server whose webhooks may target 127.0.0.1 (the test receiver)."""
    server = start_server(db_url, tmp_path, env={"RACEFREE_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"})
    yield server
    server.stop()


def rule_row(ui: Console, rule_type: str) -> Any:
    return ui.page.locator(f"tr[data-rule-type='{rule_type}']")


@sqlite_only
def test_rules_and_webhooks_pages_edit_a_rule_and_show_the_failed_delivery(
    chromium: Any,
    webhook_server: Server,
    failing_receiver: Receiver,
    request: pytest.FixtureRequest,
) -> None:
    with api(webhook_server) as client:
        created = client.post(
            "/v1/webhooks",
            json={"url": failing_receiver.url, "event_types": ["AUTO_STOP_RULE_SET"]},
        )
        assert created.status_code == 201, created.text
        hook_id = created.json()["id"]
    ui = Console.open(chromium, webhook_server, SCREENSHOTS, request.node.name)
    try:
        ui.sign_in()
        ui.page.get_by_role("link", name="Rules").click()
        assert ui.page.get_by_test_id("rules-table").locator("tbody tr").count() == 3  # seeded
        ui.check("rules")

        row = rule_row(ui, "CONSECUTIVE_FAILURES")
        row.get_by_label("threshold").fill("5")
        row.get_by_label("Action of the CONSECUTIVE_FAILURES rule (global)").select_option("WARN")
        row.get_by_role("button", name="Save").click()
        assert ui.notice() == "Saved the CONSECUTIVE_FAILURES rule (global): it is version 2 now."
        assert rule_row(ui, "CONSECUTIVE_FAILURES").get_by_label("threshold").input_value() == "5"
        ui.check("rule-saved")
        rule_id = rule_row(ui, "CONSECUTIVE_FAILURES").get_attribute("data-rule-id")
        with api(webhook_server) as client:
            rule = client.get(f"/v1/auto-stop/rules/{rule_id}").json()
            assert (rule["params"], rule["action"], rule["version"]) == (
                {"threshold": 5},
                "WARN",
                2,
            )
            # another operator changes it while this page still shows version 2
            changed = client.patch(
                f"/v1/auto-stop/rules/{rule_id}", json={"params": {"threshold": 8}}
            )
            assert changed.status_code == 200, changed.text
        [saved] = [
            r for r in audit(webhook_server, "AUTO_STOP_RULE_SET") if r["details"].get("via")
        ]
        assert (saved["actor"], saved["details"]["via"]) == ("operator:first-start", "console")

        row = rule_row(ui, "CONSECUTIVE_FAILURES")
        row.get_by_label("threshold").fill("6")
        row.get_by_role("button", name="Save").click()
        said = ui.notice("error")
        assert said.startswith(
            "Not saved: this rule was changed since this page showed it — you edited version 2,"
            " it is version 3 now."
        ), said
        assert rule_row(ui, "CONSECUTIVE_FAILURES").get_by_label("threshold").input_value() == "8"
        ui.check("rule-stale")

        failing_receiver.wait_for(lambda r: len(r.requests) >= 1)
        with api(webhook_server) as client:
            deadline = time.monotonic() + 30
            while not client.get(f"/v1/webhooks/{hook_id}/deliveries").json()["deliveries"]:
                assert time.monotonic() < deadline, "no delivery was recorded"
                time.sleep(0.1)
        ui.page.get_by_role("link", name="Webhooks").click()
        hook_row = ui.page.locator(f"tr[data-webhook-id='{hook_id}']")
        assert "FAILED" in hook_row.inner_text()
        delivery = ui.page.get_by_test_id("deliveries-table").locator("tbody tr").first
        assert "AUTO_STOP_RULE_SET" in delivery.inner_text()
        assert "503" in delivery.inner_text()
        ui.check("webhooks")

        hook_row.get_by_role("button", name="Disable").click()
        assert ui.notice() == f"Webhook {failing_receiver.url} is DISABLED now (version 2)."
        assert "disabled by an operator" in hook_row.inner_text()
        ui.check("webhook-disabled")
    finally:
        ui.close()
    with api(webhook_server) as client:
        assert client.get(f"/v1/webhooks/{hook_id}").json()["status"] == "DISABLED"
