"""The API's resource groups and the asynchronous client: the one description of each route.

Each method builds a :class:`~racefree.client._transport.Call` (method, path,
body, success model, whether a lost answer may be asked again) and sends it.
``_sync_api.py`` is generated from this file (``python -m
racefree.client_codegen``), so the two clients cannot disagree.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import date
from types import TracebackType
from typing import Any

import httpx

from racefree.client import _transport, models, signing
from racefree.client._transport import Call, RetryPolicy

ItemSpec = models.PlanItem | Mapping[str, Any]


class AsyncGroup:
    """A resource group: the routes under one prefix."""

    def __init__(self, transport: _transport.AsyncTransport) -> None:
        self._transport = transport

    async def _signed(
        self, signer: signing.OwnerSigner, action: str, *, nonce_path: str = "/v1/nonce"
    ) -> dict[str, str]:
        """``X-Owner-Signature`` for ``action`` over a fresh single-use nonce."""
        nonce = await self._transport.send(Call("GET", nonce_path, models.Nonce))
        return {signing.HEADER: signer.header(action, nonce.nonce)}


class AsyncAgents(AsyncGroup):
    """``/v1/agents`` (operator)."""

    async def create(self, name: str, *, owner_public_key: str | None = None) -> models.Agent:
        body = {"name": name, "owner_public_key": owner_public_key}
        return await self._transport.send(Call("POST", "/v1/agents", models.Agent, json=body))

    async def list(
        self, *, status: str | None = None, after_id: str | None = None, limit: int = 100
    ) -> models.AgentPage:
        params = {"status": status, "after_id": after_id, "limit": limit}
        return await self._transport.send(
            Call("GET", "/v1/agents", models.AgentPage, params=params)
        )

    async def get(self, agent_id: str) -> models.Agent:
        return await self._transport.send(Call("GET", f"/v1/agents/{agent_id}", models.Agent))

    async def change_owner(
        self,
        agent_id: str,
        owner_public_key: str | None,
        *,
        signer: signing.OwnerSigner | None = None,
    ) -> models.Agent:
        """Set, change or remove the owner key; a LOCKED owner's ``signer`` must sign it."""
        headers = {}
        if signer is not None:
            action = signing.change_owner_action(agent_id, owner_public_key)
            headers = await self._signed(signer, action)
        body = {"owner_public_key": owner_public_key}
        call = Call("PATCH", f"/v1/agents/{agent_id}", models.Agent, json=body, headers=headers)
        return await self._transport.send(call)

    async def suspend(self, agent_id: str) -> models.Agent:
        return await self._move(agent_id, "suspend")

    async def activate(self, agent_id: str) -> models.Agent:
        return await self._move(agent_id, "activate")

    async def terminate(self, agent_id: str) -> models.Agent:
        return await self._move(agent_id, "terminate")

    async def deposit(self, agent_id: str, amount: int | str) -> models.Balance:
        body = {"amount": str(amount)}
        call = Call("POST", f"/v1/agents/{agent_id}/deposit", models.Balance, json=body)
        return await self._transport.send(call)

    async def _move(self, agent_id: str, action: str) -> models.Agent:
        call = Call("POST", f"/v1/agents/{agent_id}/{action}", models.Agent)
        return await self._transport.send(call)


class AsyncSessions(AsyncGroup):
    """``/v1/sessions``: open, list, read, revoke (operator); current and renew (the session)."""

    async def open(
        self,
        agent_id: str,
        *,
        expires_in: int | None = None,
        max_renewals: int | None = None,
        constraints: models.Constraints | Mapping[str, Any] | None = None,
    ) -> models.SessionWithToken:
        body: dict[str, Any] = {"agent_id": agent_id}
        if expires_in is not None:
            body["expires_in"] = expires_in
        if max_renewals is not None:
            body["max_renewals"] = max_renewals
        if constraints is not None:
            body["constraints"] = _constraints(constraints)
        call = Call("POST", "/v1/sessions", models.SessionWithToken, json=body)
        return await self._transport.send(call)

    async def list(
        self,
        *,
        agent_id: str | None = None,
        active: bool = False,
        after_id: str | None = None,
        limit: int = 100,
    ) -> models.SessionPage:
        params = {"agent_id": agent_id, "active": active, "after_id": after_id, "limit": limit}
        return await self._transport.send(
            Call("GET", "/v1/sessions", models.SessionPage, params=params)
        )

    async def get(self, session_id: str) -> models.Session:
        call = Call("GET", f"/v1/sessions/{session_id}", models.Session)
        return await self._transport.send(call)

    async def current(self, *, token: str | None = None) -> models.Session:
        """The calling session itself (session token; default: the client's)."""
        call = Call("GET", "/v1/sessions/current", models.Session, token=token)
        return await self._transport.send(call)

    async def revoke(self, session_id: str) -> models.RevokedSession:
        call = Call("DELETE", f"/v1/sessions/{session_id}", models.RevokedSession)
        return await self._transport.send(call)

    async def renew(
        self, session_id: str, *, token: str | None = None, wait: bool = True
    ) -> models.SessionWithToken:
        """Rotate the session's token, presenting ``token`` (default: the client's).

        ``RENEWAL_TOO_EARLY`` is waited out (``Retry-After``) unless ``wait`` is
        false. A lost answer is never asked again: the retry would present the
        token this renewal just rotated out. Agents should let
        :class:`SessionClient` renew, which keeps concurrent callers to one renewal.
        """
        call = Call(
            "POST",
            f"/v1/sessions/{session_id}/renew",
            models.SessionWithToken,
            replay_safe=False,
            wait_retryable=wait,
            token=token,
        )
        return await self._transport.send(call)


def _constraints(value: models.Constraints | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(value, models.Constraints):
        return value.model_dump(exclude_none=True)
    return {k: v for k, v in value.items() if v is not None}


class AsyncTransactions(AsyncGroup):
    """``/v1/transactions``: submit (session), read, approve (owner), reject (operator)."""

    async def submit(
        self,
        amount: int | str,
        destination: str,
        *,
        type: str = "TRANSFER",
        idempotency_key: str | None = None,
    ) -> models.Transaction:
        """Submit a transaction; retried safely under one ``Idempotency-Key``.

        Pass ``idempotency_key`` to make a retry of *your own* (after a crash)
        replay too; otherwise one is generated for this call.
        """
        body = {"type": type, "amount": str(amount), "destination": destination}
        call = Call(
            "POST",
            "/v1/transactions",
            models.Transaction,
            json=body,
            idempotency_key=idempotency_key,
        )
        return await self._transport.send(call)

    async def list(
        self,
        *,
        status: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        after_id: str | None = None,
        limit: int = 100,
    ) -> models.TransactionPage:
        params = {
            "status": status,
            "agent_id": agent_id,
            "session_id": session_id,
            "after_id": after_id,
            "limit": limit,
        }
        call = Call("GET", "/v1/transactions", models.TransactionPage, params=params)
        return await self._transport.send(call)

    async def get(self, transaction_id: str) -> models.Transaction:
        call = Call("GET", f"/v1/transactions/{transaction_id}", models.Transaction)
        return await self._transport.send(call)

    async def approve(
        self,
        transaction_id: str,
        signer: signing.OwnerSigner | None = None,
        *,
        owner_signature: str | None = None,
    ) -> models.Transaction:
        """The owner approves a queued APPROVAL transaction.

        With ``signer`` the client fetches a nonce and signs; ``owner_signature``
        is an ``X-Owner-Signature`` value made elsewhere (over a nonce from
        ``GET /v1/nonce``), sent as it is.
        """
        if owner_signature is not None:
            headers = {signing.HEADER: owner_signature}
        elif signer is not None:
            headers = await self._signed(signer, signing.approve_action(transaction_id))
        else:
            raise ValueError("approving needs the owner's signer or owner_signature")
        call = Call(
            "POST",
            f"/v1/transactions/{transaction_id}/approve",
            models.Transaction,
            headers=headers,
        )
        return await self._transport.send(call)

    async def reject(self, transaction_id: str) -> models.Transaction:
        call = Call("POST", f"/v1/transactions/{transaction_id}/reject", models.Transaction)
        return await self._transport.send(call)


class AsyncOperators(AsyncGroup):
    """``/v1/operators``: operator tokens -- list, create (the token shown once), revoke."""

    async def list(self) -> models.OperatorList:
        return await self._transport.send(Call("GET", "/v1/operators", models.OperatorList))

    async def create(self, label: str) -> models.CreatedOperator:
        call = Call("POST", "/v1/operators", models.CreatedOperator, json={"label": label})
        return await self._transport.send(call)

    async def revoke(self, operator_id: str) -> models.RevokedOperator:
        call = Call("DELETE", f"/v1/operators/{operator_id}", models.RevokedOperator)
        return await self._transport.send(call)


class AsyncKillSwitch(AsyncGroup):
    """``/v1/kill-switch``: status, activation (operator), recovery (master password)."""

    async def status(self) -> models.KillSwitch:
        return await self._transport.send(Call("GET", "/v1/kill-switch", models.KillSwitch))

    async def activate(self, reason: str) -> models.Activation:
        call = Call("POST", "/v1/kill-switch/activate", models.Activation, json={"reason": reason})
        return await self._transport.send(call)

    async def nonce(self) -> models.Nonce:
        """A nonce for an owner to sign a recovery with (served while the switch is engaged)."""
        return await self._transport.send(Call("GET", "/v1/kill-switch/nonce", models.Nonce))

    async def start_recovery(
        self,
        master_password: str,
        *,
        signer: signing.OwnerSigner | None = None,
        owner_signature: str | None = None,
    ) -> models.RecoveryStarted:
        """ACTIVATED -> RECOVERING; ``signer`` (or a ready ``owner_signature`` over a nonce
        from :meth:`nonce`) when any agent has a LOCKED owner."""
        headers = {"X-Master-Password": master_password}
        if owner_signature is not None:
            headers[signing.HEADER] = owner_signature
        elif signer is not None:
            # /v1/nonce is refused while the switch is engaged: its own nonce route serves
            nonce_path = "/v1/kill-switch/nonce"
            headers |= await self._signed(signer, signing.RECOVERY_ACTION, nonce_path=nonce_path)
        call = Call("POST", "/v1/kill-switch/recovery", models.RecoveryStarted, headers=headers)
        return await self._transport.send(call)

    async def complete_recovery(self, master_password: str) -> models.RecoveryCompleted:
        """RECOVERING -> NORMAL; waits out ``RECOVERY_WAIT_REQUIRED`` within the deadline."""
        call = Call(
            "POST",
            "/v1/kill-switch/recovery/complete",
            models.RecoveryCompleted,
            headers={"X-Master-Password": master_password},
        )
        return await self._transport.send(call)

    async def abort_recovery(self, master_password: str) -> models.RecoveryAborted:
        call = Call(
            "POST",
            "/v1/kill-switch/recovery/abort",
            models.RecoveryAborted,
            headers={"X-Master-Password": master_password},
        )
        return await self._transport.send(call)

    async def send_alerts(self, payload: Mapping[str, Any]) -> models.AlertsReceived:
        """Post a Prometheus Alertmanager webhook payload (``POST /v1/kill-switch/alerts``).

        Every alert is recorded; a firing one labelled ``racefree_action="kill_switch"``
        activates the switch -- once, however many alerts or retries arrive.
        """
        call = Call("POST", "/v1/kill-switch/alerts", models.AlertsReceived, json=dict(payload))
        return await self._transport.send(call)


class AsyncPlanGroups(AsyncGroup):
    """``/v1/plan-groups``: create, read, generate (one at a time per group), lock."""

    async def create(
        self, title: str, start_date: date, end_date: date, items: Sequence[ItemSpec]
    ) -> models.PlanGroup:
        body = {
            "title": title,
            "start_date": start_date.isoformat(),
            "end_date": end_date.isoformat(),
            "items": [_item(i) for i in items],
        }
        return await self._transport.send(
            Call("POST", "/v1/plan-groups", models.PlanGroup, json=body)
        )

    async def get(self, group_id: str) -> models.PlanGroup:
        call = Call("GET", f"/v1/plan-groups/{group_id}", models.PlanGroup)
        return await self._transport.send(call)

    async def plans(self, group_id: str) -> models.PlanList:
        call = Call("GET", f"/v1/plan-groups/{group_id}/plans", models.PlanList)
        return await self._transport.send(call)

    async def generate(self, group_id: str, *, wait: float = 0) -> models.Generation:
        """Generate the group's plans; a busy group (409, retryable) is retried after
        ``Retry-After`` within the client's deadline, or pass ``wait`` to wait server-side."""
        call = Call(
            "POST",
            f"/v1/plan-groups/{group_id}/generate",
            models.Generation,
            params={"wait": wait or None},
        )
        return await self._transport.send(call)

    async def lock(self, group_id: str) -> models.PlanLock:
        call = Call("GET", f"/v1/plan-groups/{group_id}/lock", models.PlanLock)
        return await self._transport.send(call)


def _item(item: ItemSpec) -> dict[str, Any]:
    if isinstance(item, models.PlanItem):
        return item.model_dump()
    return dict(item)


class AsyncAudit(AsyncGroup):
    """``GET /v1/audit-log`` (operator), paged by id."""

    async def list(
        self,
        *,
        after_id: int = 0,
        limit: int = 100,
        event_type: str | None = None,
        agent_id: str | None = None,
    ) -> models.AuditPage:
        params = {
            "after_id": after_id,
            "limit": limit,
            "event_type": event_type,
            "agent_id": agent_id,
        }
        return await self._transport.send(
            Call("GET", "/v1/audit-log", models.AuditPage, params=params)
        )

    async def all(
        self, *, event_type: str | None = None, agent_id: str | None = None
    ) -> builtins.list[models.AuditEntry]:
        """Every matching entry, oldest first (follows ``next_after_id``)."""
        found: builtins.list[models.AuditEntry] = []
        after_id = 0
        while True:
            page = await self.list(
                after_id=after_id, limit=1000, event_type=event_type, agent_id=agent_id
            )
            found.extend(page.entries)
            if len(page.entries) < 1000:
                return found
            after_id = page.next_after_id


def _if_match(version: int | None) -> dict[str, str]:
    """``If-Match: "<version>"`` (the ``version`` a rule or webhook answered), or nothing."""
    return {} if version is None else {"If-Match": f'"{version}"'}


class AsyncAutoStop(AsyncGroup):
    """``/v1/auto-stop/rules`` and ``GET /v1/agents/{id}/auto-stop`` (operator).

    A rule is global or an agent's own; an agent's rule of a type replaces the
    global rule of that type for that agent (docs/events.md). ``if_match``
    takes the ``version`` a rule answered: the change is refused with
    ``PreconditionFailedError`` (412) if the rule moved on since.
    """

    async def list(
        self, *, agent_id: str | None = None, global_only: bool = False
    ) -> models.AutoStopRuleList:
        """Every rule (global first), or one agent's own rules, or only the global ones."""
        params = {"agent_id": agent_id, "scope": "global" if global_only else None}
        call = Call("GET", "/v1/auto-stop/rules", models.AutoStopRuleList, params=params)
        return await self._transport.send(call)

    async def set(
        self,
        rule_type: models.AutoStopRuleType,
        params: Mapping[str, Any] | None = None,
        *,
        action: models.AutoStopAction = "SUSPEND_AGENT",
        agent_id: str | None = None,
        enabled: bool = True,
    ) -> models.AutoStopRule:
        """Set the rule of ``rule_type`` for ``agent_id`` (or globally), replacing any existing one.

        One rule per scope and type, so sending it again is harmless. A disabled
        agent rule exempts the agent from the global rule of that type.
        """
        body = {
            "type": rule_type,
            "params": dict(params or {}),
            "action": action,
            "agent_id": agent_id,
            "enabled": enabled,
        }
        call = Call("POST", "/v1/auto-stop/rules", models.AutoStopRule, json=body)
        return await self._transport.send(call)

    async def get(self, rule_id: str) -> models.AutoStopRule:
        call = Call("GET", f"/v1/auto-stop/rules/{rule_id}", models.AutoStopRule)
        return await self._transport.send(call)

    async def update(
        self,
        rule_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        action: models.AutoStopAction | None = None,
        enabled: bool | None = None,
        if_match: int | None = None,
    ) -> models.AutoStopRule:
        body: dict[str, Any] = {}
        if params is not None:
            body["params"] = dict(params)
        if action is not None:
            body["action"] = action
        if enabled is not None:
            body["enabled"] = enabled
        call = Call(
            "PATCH",
            f"/v1/auto-stop/rules/{rule_id}",
            models.AutoStopRule,
            json=body,
            headers=_if_match(if_match),
            # resent after a lost answer, a versioned change would hear its own 412
            replay_safe=if_match is None,
        )
        return await self._transport.send(call)

    async def delete(self, rule_id: str, *, if_match: int | None = None) -> models.Deleted:
        call = Call(
            "DELETE",
            f"/v1/auto-stop/rules/{rule_id}",
            models.Deleted,
            headers=_if_match(if_match),
            replay_safe=False,  # resent after a lost answer, it would hear 404
        )
        return await self._transport.send(call)

    async def agent(self, agent_id: str) -> models.AgentAutoStop:
        """The rules that apply to the agent and the figures they read now."""
        call = Call("GET", f"/v1/agents/{agent_id}/auto-stop", models.AgentAutoStop)
        return await self._transport.send(call)


class AsyncWebhooks(AsyncGroup):
    """``/v1/webhooks`` (operator): where events are sent, signed per Standard Webhooks."""

    async def create(self, url: str, event_types: Sequence[str] = ("*",)) -> models.CreatedWebhook:
        """Register a target (its host in ``RACEFREE_WEBHOOK_ALLOWED_HOSTS``).

        The answer's ``secret`` is shown only this once: store it to verify
        signatures. Not resent after a lost answer (it would register a second one).
        """
        body = {"url": url, "event_types": builtins.list(event_types)}
        call = Call("POST", "/v1/webhooks", models.CreatedWebhook, json=body, replay_safe=False)
        return await self._transport.send(call)

    async def list(self) -> models.WebhookList:
        return await self._transport.send(Call("GET", "/v1/webhooks", models.WebhookList))

    async def get(self, webhook_id: str) -> models.Webhook:
        return await self._transport.send(Call("GET", f"/v1/webhooks/{webhook_id}", models.Webhook))

    async def update(
        self,
        webhook_id: str,
        *,
        url: str | None = None,
        event_types: Sequence[str] | None = None,
        status: models.WebhookStatus | None = None,
        if_match: int | None = None,
    ) -> models.Webhook:
        """Change the target or the types, or enable/disable (enabling resets the failures)."""
        body: dict[str, Any] = {}
        if url is not None:
            body["url"] = url
        if event_types is not None:
            body["event_types"] = builtins.list(event_types)
        if status is not None:
            body["status"] = status
        call = Call(
            "PATCH",
            f"/v1/webhooks/{webhook_id}",
            models.Webhook,
            json=body,
            headers=_if_match(if_match),
            replay_safe=if_match is None,
        )
        return await self._transport.send(call)

    async def delete(self, webhook_id: str, *, if_match: int | None = None) -> models.Deleted:
        call = Call(
            "DELETE",
            f"/v1/webhooks/{webhook_id}",
            models.Deleted,
            headers=_if_match(if_match),
            replay_safe=False,
        )
        return await self._transport.send(call)

    async def deliveries(
        self, webhook_id: str, *, limit: int = 100, before: str | None = None
    ) -> models.DeliveryPage:
        """Delivery attempts, newest first; pass ``next_before`` as ``before`` for the next page."""
        params = {"limit": limit, "before": before}
        call = Call(
            "GET", f"/v1/webhooks/{webhook_id}/deliveries", models.DeliveryPage, params=params
        )
        return await self._transport.send(call)


class AsyncEvents(AsyncGroup):
    """``GET /v1/events/stream`` (operator): events as they commit, in outbox order."""

    async def stream(
        self,
        *,
        after_id: int | None = None,
        types: Sequence[str] | None = None,
        read_timeout: float | None = 60.0,
        last: int | None = None,
    ) -> AsyncIterator[models.Event]:
        """Iterate over events as the server sends them; ``break`` to stop.

        ``after_id``: resume after that event (0: from the first event; ``None``:
        from now). ``last``: start before the last N events instead (in the
        stream's own order, so no event committing late is missed, as a start
        after an id read from the audit log could); N counts events of every
        type. ``types`` keeps only those event types (with ``last``: the
        matching ones among the last N, then new ones). The iteration ends
        when the server ends the stream (a subscriber that fell too far behind,
        or a server shutting down): call again with ``after_id`` set to the last
        event's ``id`` to go on without a gap. ``read_timeout`` should exceed the
        server's heartbeat interval (``RACEFREE_EVENTS_HEARTBEAT_S``, 15 s).
        An error answer raises its catalog exception; a lost connection raises
        :class:`TransportError`.
        """
        params = _transport.clean_params(
            {"after_id": after_id, "last": last, "types": ",".join(types) if types else None}
        )
        headers = {"User-Agent": _transport.USER_AGENT, "Accept": "text/event-stream"}
        token = await self._transport.auth.bearer()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        timeout = httpx.Timeout(self._transport.retry.attempt_timeout, read=read_timeout)
        try:
            async with self._transport.http.stream(
                "GET", "/v1/events/stream", params=params, headers=headers, timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _transport.error_from(response)
                data: builtins.list[str] = []
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        data.append(line[5:].removeprefix(" "))
                    elif not line and data:  # a blank line ends a frame
                        yield models.Event.model_validate_json("\n".join(data))
                        data = []
        except httpx.TransportError as exc:
            secrets = [token] if token else []
            error = _transport.transport_error(exc, "GET", "/v1/events/stream", secrets)
            raise error from _transport.cause(exc, secrets)


class AsyncClient:
    """The racefree API over HTTP, asynchronous (``async with AsyncClient(url, token) as c``).

    ``token`` is an operator token (``rf_op_...``) or a session token; agents
    that renew their session should use :class:`AsyncSessionClient`.
    ``retry`` bounds each logical call (see :class:`RetryPolicy`); ``http``
    lets you bring your own ``httpx.AsyncClient`` (proxies, TLS, hooks).
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        retry: RetryPolicy | None = None,
        http: httpx.AsyncClient | None = None,
        auth: _transport.AsyncAuth | None = None,
    ) -> None:
        self.transport = _transport.AsyncTransport(
            base_url, auth or _transport.AsyncStaticToken(token), retry=retry, http=http
        )
        self.agents = AsyncAgents(self.transport)
        self.sessions = AsyncSessions(self.transport)
        self.transactions = AsyncTransactions(self.transport)
        self.kill_switch = AsyncKillSwitch(self.transport)
        self.plan_groups = AsyncPlanGroups(self.transport)
        self.audit = AsyncAudit(self.transport)
        self.operators = AsyncOperators(self.transport)
        self.auto_stop = AsyncAutoStop(self.transport)
        self.webhooks = AsyncWebhooks(self.transport)
        self.events = AsyncEvents(self.transport)

    async def health(self) -> models.Health:
        return await self.transport.send(Call("GET", "/health", models.Health))

    async def nonce(self) -> models.Nonce:
        """A single-use nonce for an owner signature."""
        return await self.transport.send(Call("GET", "/v1/nonce", models.Nonce))

    async def close(self) -> None:
        await self.transport.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
