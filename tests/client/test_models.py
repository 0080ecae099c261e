"""The client's models are exactly the server's answers: no missing field, no unknown one.

Every route of the app is called through the client (over the in-process app,
both engines); each raw answer is validated against the model the client used,
with extra fields forbidden and every field present. A route without a model in
:data:`MODELS` fails :func:`test_every_json_route_has_a_client_model`.
"""

from __future__ import annotations

from datetime import date
from typing import Any, get_args

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from racefree import operators
from racefree.client import Client, OwnerSigner, models
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.settings import Settings
from tests.conftest import TEST_POOL_SIZE
from tests.events.hooks import deliverer, run_until
from tests.events.receiver import Receiver

PASSWORD = "correct horse battery staple"

#: (method, route path) -> the model of its success answer
MODELS: dict[tuple[str, str], type[BaseModel]] = {
    ("GET", "/health"): models.Health,
    ("GET", "/v1/nonce"): models.Nonce,
    ("POST", "/v1/agents"): models.Agent,
    ("GET", "/v1/agents"): models.AgentPage,
    ("GET", "/v1/agents/{agent_id}"): models.Agent,
    ("PATCH", "/v1/agents/{agent_id}"): models.Agent,
    ("POST", "/v1/agents/{agent_id}/suspend"): models.Agent,
    ("POST", "/v1/agents/{agent_id}/activate"): models.Agent,
    ("POST", "/v1/agents/{agent_id}/terminate"): models.Agent,
    ("POST", "/v1/agents/{agent_id}/deposit"): models.Balance,
    ("POST", "/v1/sessions"): models.SessionWithToken,
    ("GET", "/v1/sessions"): models.SessionPage,
    ("GET", "/v1/sessions/current"): models.Session,
    ("GET", "/v1/sessions/{session_id}"): models.Session,
    ("DELETE", "/v1/sessions/{session_id}"): models.RevokedSession,
    ("PUT", "/v1/sessions/{session_id}/renew"): models.SessionWithToken,
    ("GET", "/v1/kill-switch"): models.KillSwitch,
    ("POST", "/v1/kill-switch/activate"): models.Activation,
    ("GET", "/v1/kill-switch/nonce"): models.Nonce,
    ("POST", "/v1/kill-switch/recovery"): models.RecoveryStarted,
    ("POST", "/v1/kill-switch/recovery/complete"): models.RecoveryCompleted,
    ("POST", "/v1/kill-switch/recovery/abort"): models.RecoveryAborted,
    ("POST", "/v1/transactions"): models.Transaction,
    ("GET", "/v1/transactions"): models.TransactionPage,
    ("GET", "/v1/transactions/{transaction_id}"): models.Transaction,
    ("POST", "/v1/transactions/{transaction_id}/approve"): models.Transaction,
    ("POST", "/v1/transactions/{transaction_id}/reject"): models.Transaction,
    ("POST", "/v1/plan-groups"): models.PlanGroup,
    ("GET", "/v1/plan-groups/{group_id}"): models.PlanGroup,
    ("GET", "/v1/plan-groups/{group_id}/plans"): models.PlanList,
    ("POST", "/v1/plan-groups/{group_id}/generate"): models.Generation,
    ("GET", "/v1/plan-groups/{group_id}/lock"): models.PlanLock,
    ("GET", "/v1/audit-log"): models.AuditPage,
    ("GET", "/livez"): models.Live,
    ("GET", "/readyz"): models.Ready,
    ("GET", "/v1/operators"): models.OperatorList,
    ("POST", "/v1/operators"): models.CreatedOperator,
    ("DELETE", "/v1/operators/{operator_id}"): models.RevokedOperator,
    ("POST", "/v1/sessions/{session_id}/renew"): models.SessionWithToken,
    ("POST", "/v1/kill-switch/alerts"): models.AlertsReceived,
    ("GET", "/v1/auto-stop/rules"): models.AutoStopRuleList,
    ("POST", "/v1/auto-stop/rules"): models.AutoStopRule,
    ("GET", "/v1/auto-stop/rules/{rule_id}"): models.AutoStopRule,
    ("PATCH", "/v1/auto-stop/rules/{rule_id}"): models.AutoStopRule,
    ("DELETE", "/v1/auto-stop/rules/{rule_id}"): models.Deleted,
    ("GET", "/v1/agents/{agent_id}/auto-stop"): models.AgentAutoStop,
    ("POST", "/v1/webhooks"): models.CreatedWebhook,
    ("GET", "/v1/webhooks"): models.WebhookList,
    ("GET", "/v1/webhooks/{webhook_id}"): models.Webhook,
    ("PATCH", "/v1/webhooks/{webhook_id}"): models.Webhook,
    ("DELETE", "/v1/webhooks/{webhook_id}"): models.Deleted,
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): models.DeliveryPage,
}
#: Routes that do not answer JSON objects (the stream: tests/client/test_events.py).
NOT_JSON = {("GET", "/metrics"), ("GET", "/v1/events/stream")}


@pytest.fixture
def settings(db_url: str) -> Settings:
    """Webhooks may target the tour's receiver on 127.0.0.1."""
    return Settings(
        database_url=db_url, db_pool_size=TEST_POOL_SIZE, webhook_allowed_hosts="127.0.0.1"
    )


def _routes(client: TestClient) -> set[tuple[str, str]]:
    """Every operation the app documents (its OpenAPI document)."""
    paths = client.get("/openapi.json").json()["paths"]
    return {(m.upper(), p) for p, ops in paths.items() for m in ops if m != "head"}


def test_every_json_route_has_a_client_model(client: TestClient) -> None:
    assert _routes(client) - NOT_JSON == set(MODELS)


def _shape(schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    """A JSON schema reduced to its structure: the property names of every object, nested
    (scalar types differ in spelling -- an enum here, a string there -- and are left out)."""
    if "$ref" in schema:
        return _shape(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    for variant in schema.get("anyOf", ()):
        if variant.get("type") != "null":
            return _shape(variant, defs)
    if schema.get("type") == "array":
        return [_shape(schema.get("items", {}), defs)]
    if "properties" in schema:
        return {k: _shape(v, defs) for k, v in schema["properties"].items()}
    return "scalar"


def test_every_client_model_has_the_shape_the_server_documents(client: TestClient) -> None:
    """The client's model of each route and the server's response model describe the same
    fields, nested (the tour below proves the types on real answers)."""
    document = client.get("/openapi.json").json()
    defs = document["components"]["schemas"]
    for (method, path), model in MODELS.items():
        responses = document["paths"][path][method.lower()]["responses"]
        success = next(v for k, v in sorted(responses.items()) if k.startswith("2"))
        served = _shape(success["content"]["application/json"]["schema"], defs)
        own = model.model_json_schema(ref_template="#/components/schemas/{model}")
        assert _shape(own, own.get("$defs", {})) == served, (method, path)


def exact(raw: dict[str, Any], model: type[BaseModel]) -> None:
    """``raw`` is ``model`` exactly: unknown fields fail, and so do missing ones."""
    _all_fields_set(model.model_validate(raw, extra="forbid"))


def _all_fields_set(value: Any) -> None:
    if isinstance(value, BaseModel):
        missing = set(type(value).model_fields) - value.model_fields_set
        assert not missing, f"{type(value).__name__}: the server no longer sends {missing}"
        for name in type(value).model_fields:
            _all_fields_set(getattr(value, name))
    elif isinstance(value, list):
        for item in value:
            _all_fields_set(item)


@pytest.fixture
def answers(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, JSON) of every 2xx answer the app gives."""
    seen: list[tuple[str, str, dict[str, Any]]] = []

    def keep(response: Any) -> None:
        response.read()
        if response.status_code < 300:
            request = response.request
            seen.append((request.method, request.url.path, response.json()))

    client.event_hooks = {"request": [], "response": [keep]}
    return seen


def _template(method: str, path: str) -> tuple[str, str]:
    """The route ``path`` was served by (a literal path before a parameterised one)."""
    if (method, path) in MODELS:
        return (method, path)
    parts = path.split("/")
    for m, template in MODELS:
        wanted = template.split("/")
        if (
            m == method
            and len(parts) == len(wanted)
            and all(w.startswith("{") or w == p for p, w in zip(parts, wanted, strict=True))
        ):
            return (m, template)
    raise AssertionError(f"no model for {method} {path}")


def test_every_answer_of_a_full_tour_is_exactly_its_model(
    api: Client,
    client: TestClient,
    answers: list[tuple[str, str, dict[str, Any]]],
    db: Database,
    settings: Settings,
    clock: ManualClock,
    operator_token: str,
) -> None:
    operators.bootstrap(db, master_password=PASSWORD, now=clock.now())
    with Receiver() as receiver:
        hooks = Deliveries(db, settings, receiver)
        _tour(api, client, str(client.base_url), clock, hooks, operator_token)
    covered = set()
    for method, path, raw in answers:
        key = _template(method, path)
        exact(raw, MODELS[key])
        covered.add(key)
    assert covered == set(MODELS), f"not exercised: {set(MODELS) - covered}"


class Deliveries:
    """A webhook receiver on 127.0.0.1 and a deliverer that sends it what is due."""

    def __init__(self, db: Database, settings: Settings, receiver: Receiver) -> None:
        self.url = receiver.url
        self.receiver = receiver
        self.deliverer = deliverer(db, settings)

    def deliver(self, event_ids: list[int]) -> None:
        """Deliver until the receiver has accepted these events."""
        run_until(
            self.deliverer,
            lambda: set(event_ids) <= {r.event_id for r in self.receiver.succeeded()},
        )


def _tour(
    api: Client,
    client: TestClient,
    base_url: str,
    clock: ManualClock,
    hooks: Deliveries,
    operator_token: str,
) -> None:
    signer = OwnerSigner.generate(clock=clock.now)
    api.health()
    api.nonce()
    agent = api.agents.create("tour", owner_public_key=signer.public_key)
    api.agents.list()
    api.agents.get(agent.id)
    api.agents.deposit(agent.id, 100_000)
    issued = api.sessions.open(agent.id, expires_in=100, constraints={"max_transactions": 50})
    api.sessions.list(agent_id=agent.id)
    api.sessions.get(issued.session_id)
    agent_api = Client(base_url, issued.token, http=client)
    agent_api.sessions.current()
    txn = agent_api.transactions.submit(100, "shop")
    agent_api.transactions.list()
    agent_api.transactions.get(txn.transaction_id)
    queued = agent_api.transactions.submit(60_000, "big purchase")
    api.transactions.approve(queued.transaction_id, signer)
    to_reject = agent_api.transactions.submit(60_000, "another")
    api.transactions.reject(to_reject.transaction_id)
    group = agent_api.plan_groups.create(
        "week", date(2026, 1, 1), date(2026, 1, 7), [models.PlanItem(name="a", units=7)]
    )
    agent_api.plan_groups.get(group.id)
    agent_api.plan_groups.generate(group.id)
    agent_api.plan_groups.plans(group.id)
    agent_api.plan_groups.lock(group.id)
    clock.advance(60)
    renewed = agent_api.sessions.renew(issued.session_id)
    assert renewed.renewal_count == 1
    api.sessions.revoke(issued.session_id)
    next_key = OwnerSigner.generate(clock=clock.now)
    api.agents.change_owner(agent.id, next_key.public_key, signer=signer)
    api.agents.suspend(agent.id)
    api.agents.activate(agent.id)
    _events_tour(api, agent.id, hooks)
    api.kill_switch.status()
    api.kill_switch.activate("drill")
    api.kill_switch.start_recovery(PASSWORD, signer=next_key)
    api.kill_switch.abort_recovery(PASSWORD)
    api.kill_switch.start_recovery(PASSWORD, signer=next_key)
    clock.advance(86_401)
    api.kill_switch.complete_recovery(PASSWORD)
    api.audit.list()
    _tour_beyond_the_client(client, api, operator_token, agent.id, clock)
    api.agents.terminate(agent.id)


def _tour_beyond_the_client(
    client: TestClient, api: Client, operator_token: str, agent_id: str, clock: ManualClock
) -> None:
    """Routes the client has no method for yet, called as raw HTTP (the same hook keeps
    their answers): probes, operators, the deprecated PUT renew."""
    op = {"Authorization": f"Bearer {operator_token}"}

    def ok(method: str, path: str, **kwargs: Any) -> Any:
        response = client.request(method, path, headers=op, **kwargs)
        assert response.status_code < 300, (method, path, response.text)
        return response.json()

    client.get("/livez")
    client.get("/readyz")
    made = ok("POST", "/v1/operators", json={"label": "tour"})
    ok("GET", "/v1/operators")
    ok("DELETE", f"/v1/operators/{made['id']}")
    issued = api.sessions.open(agent_id, expires_in=100)
    clock.advance(60)
    renewed = client.put(
        f"/v1/sessions/{issued.session_id}/renew",
        headers={"Authorization": f"Bearer {issued.token}"},
    )
    assert renewed.status_code == 200, renewed.text


TYPES = ["AGENT_SUSPENDED", "AGENT_ACTIVATED"]


def _events_tour(api: Client, agent_id: str, hooks: Deliveries) -> None:
    """Auto-stop rules, webhooks and their deliveries, alerts: every route, every field."""
    api.auto_stop.list()
    rule = api.auto_stop.set("HOURLY_RATE", {"max_tx_per_hour": 500}, agent_id=agent_id)
    assert (rule.scope, rule.version) == ("agent", 1)
    replaced = api.auto_stop.set("HOURLY_RATE", {"max_tx_per_hour": 400}, agent_id=agent_id)
    assert (replaced.id, replaced.version) == (rule.id, 2)
    api.auto_stop.get(rule.id)
    changed = api.auto_stop.update(rule.id, action="WARN", if_match=replaced.version)
    view = api.auto_stop.agent(agent_id)
    assert changed in view.rules
    api.auto_stop.delete(rule.id, if_match=changed.version)
    created = api.webhooks.create(hooks.url, TYPES)
    assert created.secret.startswith("whsec_")
    api.webhooks.list()
    api.webhooks.get(created.id)
    api.agents.suspend(agent_id)
    api.agents.activate(agent_id)
    # (on PostgreSQL a webhook starts at the outbox head, which an open transaction
    # elsewhere on the server may hold back: the tour's earlier suspension may come too)
    wanted = [api.audit.list(event_type=t, agent_id=agent_id).entries[-1].id for t in TYPES]
    hooks.deliver(wanted)
    page = api.webhooks.deliveries(created.id)
    assert [(d.event_type, d.event_id) for d in page.deliveries[:2]] == list(
        zip(reversed(TYPES), reversed(wanted), strict=True)
    )  # newest first
    updated = api.webhooks.update(created.id, status="DISABLED", if_match=created.version)
    assert updated.status == "DISABLED"
    api.webhooks.delete(created.id, if_match=updated.version)
    received = api.kill_switch.send_alerts(
        {
            "status": "firing",
            "receiver": "racefree",
            "alerts": [{"status": "firing", "labels": {"alertname": "Noisy"}}],
        }
    )
    assert [o.outcome for o in received.outcomes] == ["recorded"]


def test_the_clients_enumerations_are_the_servers() -> None:
    """Literal types in the client name exactly the values the server's domains use."""
    from racefree.autostop import alerts, rules
    from racefree.core.audit import Severity
    from racefree.events import delivery, webhooks

    assert set(get_args(models.AutoStopRuleType)) == {t.value for t in rules.RuleType}
    assert set(get_args(models.AutoStopAction)) == {a.value for a in rules.Action}
    assert set(get_args(models.Severity)) == {s.value for s in Severity}
    assert set(get_args(models.WebhookStatus)) == set(webhooks.STATUSES)
    assert set(get_args(models.DeliveryOutcome)) == {delivery.SUCCEEDED, delivery.FAILED}
    assert set(get_args(models.AlertOutcomeName)) == {
        alerts.ACTIVATED,
        alerts.ALREADY_ACTIVE,
        alerts.RECORDED,
    }
