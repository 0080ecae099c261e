"""The console's Rules and Webhooks pages over HTTP (the real app, in process; both engines):
listing, editing a rule at the version the page showed, enabling/disabling a webhook,
and the refusals (stale version, CSRF, signed out, bad input, kill switch engaged)."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from racefree import agents, console, killswitch
from racefree.autostop import rules
from racefree.autostop.rules import Action, RuleType
from racefree.console import paths
from racefree.core import audit
from racefree.core.clock import ManualClock
from racefree.core.db import Database, Tx
from racefree.core.ids import new_id
from racefree.events import secrets, webhooks
from racefree.events.delivery import Deliverer
from racefree.runtime import Runtime
from tests.console.test_http import sign_in

UNREACHABLE = "http://127.0.0.1:9/hook"  # no host is allowed by default: never sent


def make_rule(db: Database, clock: ManualClock, rule_type: RuleType, **params: Any) -> rules.Rule:
    with db.write() as tx:
        rule, _ = rules.put(
            tx,
            agent_id=None,
            rule_type=rule_type,
            params=rules.parse_params(rule_type, params),
            action=Action.SUSPEND_AGENT,
            now=clock.now(),
            actor="system",
        )
    return rule


def read_rule(db: Database, rule_id: str) -> rules.Rule:
    with db.read() as tx:
        return rules.get(tx, rule_id)


def console_rows(db: Database, event_type: str) -> list[audit.AuditEntry]:
    with db.read() as tx:
        found = audit.entries(tx, event_type=event_type)
    return [e for e in found if e.details.get("via") == "console"]


def edit_form(csrf: str, version: int, **fields: str) -> dict[str, str]:
    return {
        "csrf_token": csrf,
        "version": str(version),
        "action": "SUSPEND_AGENT",
        "enabled": "true",
        **fields,
    }


def save(client: TestClient, rule_id: str, form: dict[str, str]) -> httpx.Response:
    return client.post(f"{paths.RULES}/{rule_id}", data=form)


def notice(response: httpx.Response, kind: str) -> str:
    found = re.search(rf'data-testid="notice-{kind}">([^<]*)<', response.text)
    assert found is not None, response.text
    return found.group(1).replace("&#39;", "'")


# -- rules ------------------------------------------------------------------------------


def test_the_rules_page_lists_every_rule_with_its_fields_and_version(
    client: TestClient, operator_token: str, db: Database, clock: ManualClock
) -> None:
    failures = make_rule(db, clock, RuleType.CONSECUTIVE_FAILURES, threshold=4)
    hours = make_rule(db, clock, RuleType.TIME_RESTRICTION, allowed_hours={"start": 22, "end": 6})
    sign_in(client, operator_token)
    page = client.get(paths.RULES)
    assert page.status_code == 200
    assert 'aria-current="page">Rules<' in page.text
    assert page.text.count("<tr data-rule-id=") == 2
    assert f'data-rule-id="{failures.id}" data-rule-type="CONSECUTIVE_FAILURES"' in page.text
    assert f'name="params.threshold" form="rule-{failures.id}"' in page.text
    assert f'name="params.allowed_hours.start" form="rule-{hours.id}"' in page.text
    assert 'name="version" value="1"' in page.text
    assert client.head(paths.RULES).status_code == 200


def test_saving_a_rule_changes_it_and_audits_the_operator_via_the_console(
    client: TestClient, operator_token: str, db: Database, clock: ManualClock
) -> None:
    rule = make_rule(db, clock, RuleType.TIME_RESTRICTION, allowed_hours={"start": 8, "end": 18})
    csrf = sign_in(client, operator_token)
    done = save(
        client,
        rule.id,
        edit_form(
            csrf,
            1,
            **{"params.allowed_hours.start": "22", "params.allowed_hours.end": "6"},
            action="WARN",
            enabled="false",
        ),
    )
    assert done.status_code == 200, done.text
    said = notice(done, "ok")
    assert said == "Saved the TIME_RESTRICTION rule (global): it is version 2 now."
    after = read_rule(db, rule.id)
    assert (after.version, after.action, after.enabled) == (2, Action.WARN, False)
    assert (after.params.allowed_hours.start, after.params.allowed_hours.end) == (22, 6)
    [row] = console_rows(db, "AUTO_STOP_RULE_SET")
    assert row.actor == "operator:test"
    assert (row.details["id"], row.details["version"], row.details["action"]) == (
        rule.id,
        2,
        "WARN",
    )


def test_a_stale_version_is_a_conflict_in_plain_words_and_changes_nothing(
    client: TestClient, operator_token: str, db: Database, clock: ManualClock
) -> None:
    rule = make_rule(db, clock, RuleType.CONSECUTIVE_FAILURES, threshold=3)
    csrf = sign_in(client, operator_token)
    assert 'name="version" value="1"' in client.get(paths.RULES).text  # what the page showed
    with db.write() as tx:  # meanwhile another operator changes it (as the API does)
        rules.update(tx, rule.id, now=clock.now(), actor="operator:bob", params={"threshold": 7})
    stale = save(client, rule.id, edit_form(csrf, 1, **{"params.threshold": "5"}))
    assert stale.status_code == 409
    assert re.fullmatch(
        r"Not saved: this rule was changed since this page showed it — you edited version 1,"
        r" it is version 2 now\. Last change: AUTO_STOP_RULE_SET by operator:bob at"
        r" \d\d:\d\d:\d\d UTC\. Nothing was changed: the current values are shown below;"
        r" edit them and save again\.",
        notice(stale, "error"),
    ), stale.text
    assert (
        f'name="params.threshold" form="rule-{rule.id}" type="text" inputmode="numeric" value="7"'
        in (stale.text)
    )  # the page shows the winner's values to edit again
    after = read_rule(db, rule.id)
    assert (after.version, after.params.threshold) == (2, 7)
    assert console_rows(db, "AUTO_STOP_RULE_SET") == []


def test_a_rule_edit_without_the_csrf_token_is_refused(
    client: TestClient, operator_token: str, db: Database, clock: ManualClock
) -> None:
    rule = make_rule(db, clock, RuleType.HOURLY_RATE, max_tx_per_hour=50)
    sign_in(client, operator_token)
    for csrf in ("", "0" * 64):
        refused = save(client, rule.id, edit_form(csrf, 1, **{"params.max_tx_per_hour": "5"}))
        assert refused.status_code == 403
        assert "CSRF check failed" in refused.text
    assert read_rule(db, rule.id).version == 1


def test_signed_out_the_pages_redirect_to_sign_in_and_the_actions_are_refused(
    client: TestClient, db: Database, clock: ManualClock
) -> None:
    rule = make_rule(db, clock, RuleType.HOURLY_RATE, max_tx_per_hour=50)
    for path in (paths.RULES, paths.WEBHOOKS):
        page = client.get(path, follow_redirects=False)
        assert (page.status_code, page.headers["location"]) == (303, paths.LOGIN)
    for path in (f"{paths.RULES}/{rule.id}", f"{paths.WEBHOOKS}/{rule.id}/disable"):
        refused = client.post(path, data={"csrf_token": "0" * 64, "version": "1"})
        assert refused.status_code == 401
        assert "Sign in required" in refused.text
    assert read_rule(db, rule.id).version == 1


def test_bad_input_is_explained_and_changes_nothing(
    client: TestClient, operator_token: str, db: Database, clock: ManualClock
) -> None:
    failures = make_rule(db, clock, RuleType.CONSECUTIVE_FAILURES, threshold=3)
    daily = make_rule(db, clock, RuleType.DAILY_LIMIT, daily_max=1000)
    csrf = sign_in(client, operator_token)
    cases = [
        (failures, {"params.threshold": "abc"}, "threshold must be a whole number, not 'abc'"),
        (failures, {"params.threshold": "-1"}, "threshold must be a whole number, not '-1'"),
        (failures, {"params.threshold": "0"}, "threshold: Input should be greater than or equal"),
        (failures, {"params.threshold": "3", "action": "EXPLODE"}, "the action must be one of"),
        (failures, {"params.threshold": "3", "version": "x"}, "the form lost the rule's version"),
        (
            daily,
            {"params.warn_percent": "90", "params.stop_percent": "50", "params.daily_max": "9"},
            "warn_percent must not be above stop_percent",
        ),
        (daily, {"params.warn_percent": "90"}, "stop percent must be a whole number"),
    ]
    for rule, fields, expected in cases:
        form = {**edit_form(csrf, 1), **fields}
        refused = save(client, rule.id, form)
        assert refused.status_code == 400, (fields, refused.text)
        said = notice(refused, "error")
        assert said.startswith("Not done: ") and expected in said, (fields, said)
    missing = save(client, "0" * 8, edit_form(csrf, 1))
    assert missing.status_code == 404
    assert notice(missing, "error") == "Auto-stop rule not found: no auto-stop rule 00000000."
    assert [read_rule(db, r.id).version for r in (failures, daily)] == [1, 1]
    assert console_rows(db, "AUTO_STOP_RULE_SET") == []


# -- webhooks ---------------------------------------------------------------------------


def make_webhook(runtime: Runtime, url: str = UNREACHABLE) -> webhooks.Webhook:
    now = runtime.clock.now()
    with runtime.db.write() as tx:
        box = secrets.box(tx, runtime.settings, now=now)
        hook, _secret = webhooks.create(
            tx, box, url=url, event_types=["*"], now=now, actor="operator:test"
        )
    return hook


def deliver_until_attempted(runtime: Runtime, hook: webhooks.Webhook) -> webhooks.Delivery:
    """Run the real deliverer until it has attempted the webhook (on PostgreSQL the outbox
    head may trail a moment behind other open transactions in the cluster)."""
    deliverer = Deliverer(runtime.db, runtime.clock, runtime.settings, holder="test")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            deliverer.deliver(hook.id)
            with runtime.db.read() as tx:
                found = webhooks.deliveries(tx, hook.id, limit=1)
            if found:
                return found[0]
            time.sleep(0.05)
    finally:
        deliverer.close()
    raise AssertionError("the deliverer never attempted the webhook")


def test_the_webhooks_page_lists_webhooks_and_their_deliveries(
    client: TestClient, operator_token: str, runtime: Runtime, db: Database, clock: ManualClock
) -> None:
    sign_in(client, operator_token)
    assert "No webhooks." in client.get(paths.WEBHOOKS).text
    hook = make_webhook(runtime)
    make_rule(db, clock, RuleType.HOURLY_RATE, max_tx_per_hour=50)  # an event to deliver
    attempt = deliver_until_attempted(runtime, hook)
    assert attempt.outcome == "FAILED" and attempt.error is not None

    page = client.get(paths.WEBHOOKS)
    assert page.status_code == 200
    row = page.text.split(f'<tr data-webhook-id="{hook.id}">', 1)[1].split("</tr>", 1)[0]
    assert UNREACHABLE in row
    assert ">ACTIVE<" in row
    assert '<td data-label="Failed attempts" class="num">1</td>' in row
    assert ">FAILED<" in row and "not sent:" in row
    assert "as soon as an event arrives" not in row  # the retry is scheduled, with its time
    assert re.search(r'data-label="Next attempt">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC<', row)
    deliveries = page.text.split('data-testid="deliveries-table"', 1)[1]
    assert f'data-delivery-id="{attempt.id}"' in deliveries
    assert attempt.event_type in deliveries

    one = client.get(paths.WEBHOOKS, params={"webhook_id": hook.id})
    assert one.status_code == 200
    assert f'Deliveries of webhook <span class="id">{hook.id}</span>' in one.text
    assert f'data-delivery-id="{attempt.id}"' in one.text
    gone = client.get(paths.WEBHOOKS, params={"webhook_id": "0" * 36})
    assert gone.status_code == 404
    assert "Webhook not found" in notice(gone, "error")


def test_disabling_and_enabling_a_webhook_at_the_version_shown(
    client: TestClient, operator_token: str, runtime: Runtime, db: Database
) -> None:
    hook = make_webhook(runtime)
    csrf = sign_in(client, operator_token)
    disabled = client.post(
        f"{paths.WEBHOOKS}/{hook.id}/disable", data={"csrf_token": csrf, "version": "1"}
    )
    assert disabled.status_code == 200, disabled.text
    assert notice(disabled, "ok") == f"Webhook {UNREACHABLE} is DISABLED now (version 2)."
    assert "disabled by an operator" in disabled.text
    stale = client.post(
        f"{paths.WEBHOOKS}/{hook.id}/enable", data={"csrf_token": csrf, "version": "1"}
    )
    assert stale.status_code == 409
    assert re.fullmatch(
        r"Not saved: this webhook was changed since this page showed it — you edited version 1,"
        r" it is version 2 now\. Last change: WEBHOOK_UPDATED by operator:test at \d\d:\d\d:\d\d"
        r" UTC\. Nothing was changed: the current values are shown below; edit them and save"
        r" again\.",
        notice(stale, "error"),
    )
    enabled = client.post(
        f"{paths.WEBHOOKS}/{hook.id}/enable", data={"csrf_token": csrf, "version": "2"}
    )
    assert enabled.status_code == 200, enabled.text
    with db.read() as tx:
        after = webhooks.get(tx, hook.id)
    assert (after.status, after.version, after.failures) == ("ACTIVE", 3, 0)
    rows = console_rows(db, "WEBHOOK_UPDATED")
    assert [(r.actor, r.details["status"]) for r in rows] == [
        ("operator:test", "DISABLED"),
        ("operator:test", "ACTIVE"),
    ]


# -- the kill switch --------------------------------------------------------------------


def test_while_engaged_the_pages_serve_with_edits_disabled_and_edits_are_refused(
    client: TestClient, operator_token: str, runtime: Runtime, db: Database, clock: ManualClock
) -> None:
    rule = make_rule(db, clock, RuleType.CONSECUTIVE_FAILURES, threshold=3)
    hook = make_webhook(runtime)
    csrf = sign_in(client, operator_token)
    with db.write() as tx:
        killswitch.activate(tx, "incident", now=clock.now(), actor="operator:test")
    for path in (paths.RULES, paths.WEBHOOKS):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "Actions on this page are disabled: the kill switch is ACTIVATED" in page.text
        assert 'type="submit" disabled>' in page.text or 'secondary" disabled>' in page.text
        assert client.head(path).status_code == 200
    for path, form in (
        (f"{paths.RULES}/{rule.id}", edit_form(csrf, 1, **{"params.threshold": "9"})),
        (f"{paths.WEBHOOKS}/{hook.id}/disable", {"csrf_token": csrf, "version": "1"}),
    ):
        assert not console.allowed_while_locked("POST", path)
        refused = client.post(path, data=form)
        assert refused.status_code == 503, path
        assert "the kill switch is ACTIVATED (reason: incident)" in refused.text
    assert read_rule(db, rule.id).version == 1
    with db.read() as tx:
        assert webhooks.get(tx, hook.id).status == "ACTIVE"


# -- accessible names and the queries a page issues ------------------------------------


def label_texts(page: str) -> dict[str, str]:
    """Each parameter input's id -> its label's text (tags dropped), as a screen reader
    reads the field's name."""
    found = re.findall(r'<label for="(rule-[^"]+)">(.*?)</label>', page)
    return {for_id: re.sub(r"<[^>]+>", "", text) for for_id, text in found}


def test_every_parameter_field_names_its_rule_and_scope(
    client: TestClient, operator_token: str, db: Database, clock: ManualClock
) -> None:
    glob = make_rule(db, clock, RuleType.CONSECUTIVE_FAILURES, threshold=3)
    with db.write() as tx:
        agent = agents.create(tx, name="courier", now=clock.now())
        own, _ = rules.put(
            tx,
            agent_id=agent.id,
            rule_type=RuleType.CONSECUTIVE_FAILURES,
            params=rules.parse_params(RuleType.CONSECUTIVE_FAILURES, {"threshold": 5}),
            action=Action.WARN,
            now=clock.now(),
            actor="system",
        )
    sign_in(client, operator_token)
    names = label_texts(client.get(paths.RULES).text)
    # like the row's selects (and the agents page's deposit field): one name per field
    assert names == {
        f"rule-{glob.id}-threshold": "threshold of the CONSECUTIVE_FAILURES rule (global)",
        f"rule-{own.id}-threshold": (
            f"threshold of the CONSECUTIVE_FAILURES rule (agent {agent.id})"
        ),
    }


def add_delivery(db: Database, hook: webhooks.Webhook, n: int) -> webhooks.Delivery:
    delivery = webhooks.Delivery(
        id=new_id(),
        webhook_id=hook.id,
        event_id=n,
        event_type="AUTO_STOP_RULE_SET",
        attempt=1,
        outcome="FAILED",
        status_code=503,
        error=f"attempt {n}",
        duration_ms=3,
        holder="test",
        started_at_ms=1_800_000_000_000 + n,
    )
    with db.write() as tx:
        webhooks.record_delivery(tx, delivery)
    return delivery


def test_the_webhooks_page_reads_every_hooks_recent_deliveries_in_one_statement(
    client: TestClient,
    operator_token: str,
    runtime: Runtime,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hooks = [make_webhook(runtime) for _ in range(4)]
    made = {h.id: [add_delivery(db, h, 10 * i + n) for n in range(7)] for i, h in enumerate(hooks)}
    sign_in(client, operator_token)
    statements: list[str] = []
    real_all = Tx.all

    def counted(tx: Tx, sql: str, params: Any = None) -> Any:  # the real query, counted
        statements.append(sql)
        return real_all(tx, sql, params)

    def deliveries_read(path: str, **params: str) -> tuple[httpx.Response, int]:
        statements.clear()
        with monkeypatch.context() as patch:
            patch.setattr(Tx, "all", counted)
            response = client.get(path, params=params)
        return response, sum("webhook_deliveries" in s for s in statements)

    page, reads = deliveries_read(paths.WEBHOOKS)
    assert reads == 1, statements  # every webhook's recent deliveries at once, not one by one
    one, reads = deliveries_read(paths.WEBHOOKS, webhook_id=hooks[0].id)
    assert reads == 2, statements  # the last delivery of each, and the chosen one's history
    assert page.status_code == 200 and one.status_code == 200
    shown = page.text.split('data-testid="deliveries-table"', 1)[1]
    for hook in hooks:
        newest_first = made[hook.id][::-1]
        row = page.text.split(f'<tr data-webhook-id="{hook.id}">', 1)[1].split("</tr>", 1)[0]
        assert f"{newest_first[0].error}<" in row  # its last delivery
        assert all(f'data-delivery-id="{d.id}"' in shown for d in newest_first[:5])
        assert not any(f'data-delivery-id="{d.id}"' in shown for d in newest_first[5:])
        row = one.text.split(f'<tr data-webhook-id="{hook.id}">', 1)[1].split("</tr>", 1)[0]
        assert f"{newest_first[0].error}<" in row
    chosen = one.text.split('data-testid="deliveries-table"', 1)[1]
    assert chosen.count("<tr data-delivery-id=") == 7
