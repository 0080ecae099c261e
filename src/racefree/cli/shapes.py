"""Local mode's answers in the API's shapes: domain objects -> :mod:`racefree.client.models`.

The HTTP layer's own shaping functions are used where it has them
(``agent_json``, ``session_json``, ``activation_json``, ``Transaction.to_public``); the small
answers it builds inline are built here the same way. Every one is validated
by the client's model, which a test holds exactly to the server's answer, so
a field added to the API and not here fails loudly instead of printing less.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from racefree.client import models
from racefree.core.clock import isoformat

if TYPE_CHECKING:
    from racefree.agents import Agent
    from racefree.autostop.rules import Rule
    from racefree.core.audit import AuditEntry
    from racefree.events.outbox import Event
    from racefree.events.webhooks import Webhook
    from racefree.killswitch import Activation, KillSwitchStatus
    from racefree.killswitch.recovery import RecoveryAborted, RecoveryCompleted, RecoveryStarted
    from racefree.operators import OperatorToken
    from racefree.sessions import Session
    from racefree.transactions.machine import Transaction


def _times(name: str, epoch: int | None) -> dict[str, Any]:
    return {name: isoformat(epoch), f"{name}_epoch": epoch}


def agent(found: Agent) -> models.Agent:
    from racefree.http.routes.agents import agent_json

    return models.Agent.model_validate(agent_json(found))


def agent_page(found: list[Agent], after_id: str | None) -> models.AgentPage:
    return models.AgentPage(
        agents=[agent(a) for a in found],
        next_after_id=found[-1].id if found else after_id,
    )


def balance(agent_id: str, amount: int) -> models.Balance:
    return models.Balance(agent_id=agent_id, balance=str(amount))


def session(found: Session) -> models.Session:
    from racefree.http.routes.sessions import session_json

    return models.Session.model_validate(session_json(found))


def session_page(found: list[Session], after_id: str | None) -> models.SessionPage:
    return models.SessionPage(
        sessions=[session(s) for s in found],
        next_after_id=found[-1].id if found else after_id,
    )


def revoked_session(found: Session) -> models.RevokedSession:
    return models.RevokedSession(
        session_id=found.id,
        revoked_at=isoformat(found.revoked_at),
        revoke_reason=found.revoke_reason,
    )


def transaction(found: Transaction) -> models.Transaction:
    return models.Transaction.model_validate(found.to_public())


def transaction_page(found: list[Transaction], after_id: str | None) -> models.TransactionPage:
    return models.TransactionPage(
        transactions=[transaction(t) for t in found],
        next_after_id=found[-1].id if found else after_id,
    )


def kill_switch(current: KillSwitchStatus, now: int) -> models.KillSwitch:
    from racefree.http.routes.killswitch import status_json

    return models.KillSwitch.model_validate(status_json(current, now))


def activation(result: Activation) -> models.Activation:
    from racefree.http.routes.killswitch import activation_json

    return models.Activation.model_validate(activation_json(result))


def recovery_started(result: RecoveryStarted) -> models.RecoveryStarted:
    from racefree.http.routes.killswitch import recovery_started_json

    return models.RecoveryStarted.model_validate(recovery_started_json(result))


def recovery_completed(result: RecoveryCompleted) -> models.RecoveryCompleted:
    return models.RecoveryCompleted.model_validate(asdict(result))


def recovery_aborted(result: RecoveryAborted) -> models.RecoveryAborted:
    return models.RecoveryAborted.model_validate(asdict(result))


def nonce(value: str, expires_at: int) -> models.Nonce:
    return models.Nonce.model_validate({"nonce": value, **_times("expires_at", expires_at)})


def audit_page(found: list[AuditEntry], after_id: int) -> models.AuditPage:
    entries = [{**asdict(e), "at": isoformat(e.at), "at_epoch": e.at} for e in found]
    return models.AuditPage.model_validate(
        {"entries": entries, "next_after_id": found[-1].id if found else after_id}
    )


def operator(record: OperatorToken) -> models.Operator:
    return models.Operator(
        id=record.id, label=record.label, created_at=isoformat(record.created_at)
    )


def created_operator(record: OperatorToken, token: str) -> models.CreatedOperator:
    return models.CreatedOperator(**operator(record).model_dump(), token=token)


def revoked_operator(record: OperatorToken, now: int) -> models.RevokedOperator:
    return models.RevokedOperator(id=record.id, label=record.label, revoked_at=isoformat(now))


def rule(found: Rule) -> models.AutoStopRule:
    return models.AutoStopRule.model_validate(found.as_dict())


def webhook(found: Webhook) -> models.Webhook:
    return models.Webhook.model_validate(found.public())


def created_webhook(found: Webhook, secret: str) -> models.CreatedWebhook:
    return models.CreatedWebhook.model_validate({**found.public(), "secret": secret})


def event(found: Event) -> models.Event:
    return models.Event.model_validate(found.payload())


def event_of(entry: models.AuditEntry) -> models.Event:
    """An audit entry as the event it is (the outbox is the audit log): the same payload."""
    return models.Event(
        id=entry.id,
        type=entry.event_type,
        occurred_at=entry.at,
        data=models.EventData.model_validate(
            {
                "severity": entry.severity,
                "actor": entry.actor,
                "agent_id": entry.agent_id,
                "session_id": entry.session_id,
                "transaction_id": entry.transaction_id,
                "request_id": entry.request_id,
                "details": entry.details,
            }
        ),
    )
