"""A steady mixed workload of clients, each a thread with its own seeded random source.

The clients open agents and sessions, deposit, submit transactions of every
tier with Idempotency-Keys (retrying unknown outcomes with the same key on
another replica), renew sessions, approve or reject APPROVAL transactions
with the owner's signature, generate plans and now and then terminate an
agent. Requests go to a random replica, whatever state it is in (down,
paused): a fault is something the client lives through, not something it is
told about.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from racefree.client.signing import HEADER, OwnerSigner
from tests.chaos.cluster import Cluster, Replica
from tests.chaos.history import Answer, Deposit, History, Submission

OWNER = OwnerSigner(Ed25519PrivateKey.generate())
OWNER_PUBLIC = OWNER.public_key
ATTEMPTS = 4
#: a client gives up on a request after this long (a paused replica holds it longer)
CLIENT_TIMEOUT_S = 6
#: amounts per tier with the default thresholds (INSTANT <= 1000 < NOTIFY <= 10000 < DELAY <= 50000)
AMOUNTS = {"INSTANT": (1, 1000), "NOTIFY": (1001, 10000), "DELAY": (10001, 50000)}
APPROVAL_AMOUNTS = (50001, 90000)


@dataclass
class SessionRef:
    id: str
    agent_id: str
    token: str
    #: renewals rotate the token: one client at a time uses a session
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class AgentRef:
    id: str
    terminated: bool = False
    sessions: list[SessionRef] = field(default_factory=list)


class Model:
    """What the clients believe exists (agents, their sessions); shared by all clients."""

    def __init__(self) -> None:
        self.agents: list[AgentRef] = []
        self.pending_approvals: list[tuple[str, str]] = []  # (transaction id, agent id)
        self.plan_groups: list[str] = []
        self.lock = threading.Lock()

    def live_agents(self) -> list[AgentRef]:
        with self.lock:
            return [a for a in self.agents if not a.terminated]

    def forget_sessions(self) -> None:
        """After an activation every session is revoked: open new ones."""
        with self.lock:
            for agent in self.agents:
                agent.sessions.clear()


class Client(threading.Thread):
    """One client thread; see the module docstring."""

    def __init__(
        self,
        index: int,
        seed: int,
        cluster: Cluster,
        model: Model,
        history: History,
        stopping: threading.Event,
    ) -> None:
        super().__init__(name=f"chaos-client-{index}", daemon=True)
        self.rng = random.Random(seed * 1000 + index)
        self.cluster = cluster
        self.model = model
        self.history = history
        self.stopping = stopping
        self.clients: dict[int, httpx.Client] = {}

    # -- plumbing --------------------------------------------------------------

    def replica(self) -> Replica:
        return self.rng.choice(self.cluster.replicas)

    def call(
        self,
        op: str,
        method: str,
        path: str,
        *,
        replica: Replica | None = None,
        headers: dict[str, str] | None = None,
        json: Any = None,
    ) -> tuple[Answer, Any]:
        target = replica or self.replica()
        client = self.clients.get(target.port)
        if client is None:
            client = httpx.Client(base_url=target.base_url, timeout=CLIENT_TIMEOUT_S)
            self.clients[target.port] = client
        try:
            response = client.request(method, path, headers=headers, json=json)
        except httpx.HTTPError:
            client.close()
            self.clients.pop(target.port, None)
            return self.history.record(op, Answer.of(None, path)), None
        answer = self.history.record(op, Answer.of(response, path))
        if answer.code == "SYSTEM_LOCKED":  # a well-behaved client backs off while it is engaged
            time.sleep(0.2)
        try:
            body = response.json()
        except ValueError:
            body = None
        return answer, body

    def operator(self) -> dict[str, str]:
        return self.cluster.operator_headers()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                self.step()
        finally:
            for client in self.clients.values():
                client.close()

    def step(self) -> None:
        agents = self.model.live_agents()
        if len(agents) < 3 or self.rng.random() < 0.01:
            self.create_agent()
            return
        agent = self.rng.choice(agents)
        roll = self.rng.random()
        if roll < 0.55:
            self.submit(agent)
        elif roll < 0.65:
            self.deposit(agent)
        elif roll < 0.72:
            self.renew(agent)
        elif roll < 0.82:
            self.decide_approval()
        elif roll < 0.87:
            self.generate_plans()
        elif roll < 0.93:
            self.read(agent)
        elif roll < 0.98:
            self.open_session(agent)
        elif len(agents) > 6 and self.rng.random() < 0.2:
            self.terminate(agent)

    # -- actions ---------------------------------------------------------------

    def create_agent(self) -> None:
        answer, body = self.call(
            "create_agent",
            "POST",
            "/v1/agents",
            headers=self.operator(),
            json={"name": f"chaos-{uuid.uuid4().hex[:8]}", "owner_public_key": OWNER_PUBLIC},
        )
        if answer.http == 201:
            agent = AgentRef(body["id"])
            with self.model.lock:
                self.model.agents.append(agent)
            self.deposit(agent, amount=self.rng.randint(50_000, 400_000))

    def deposit(self, agent: AgentRef, amount: int | None = None) -> None:
        amount = amount or self.rng.randint(1_000, 60_000)
        answer, _ = self.call(
            "deposit",
            "POST",
            f"/v1/agents/{agent.id}/deposit",
            headers=self.operator(),
            json={"amount": str(amount)},
        )
        self.history.add_deposit(Deposit(agent.id, amount, answer))

    def open_session(self, agent: AgentRef) -> SessionRef | None:
        constraints: dict[str, str | int] = {}
        if self.rng.random() < 0.3:
            # amounts are strings of minor units (DESIGN 7), counts are integers
            constraints = {"max_total_amount": str(self.rng.randint(5_000, 120_000))}
        if self.rng.random() < 0.2:
            constraints["max_transactions"] = self.rng.randint(2, 12)
        answer, body = self.call(
            "open_session",
            "POST",
            "/v1/sessions",
            headers=self.operator(),
            json={"agent_id": agent.id, "constraints": constraints},
        )
        if answer.http != 201:
            if answer.code == "AGENT_TERMINATED":
                agent.terminated = True
            return None
        session = SessionRef(body["session_id"], agent.id, body["token"])
        with self.model.lock:
            agent.sessions.append(session)
        return session

    def session_of(self, agent: AgentRef) -> SessionRef | None:
        with self.model.lock:
            sessions = list(agent.sessions)
        if sessions:
            return self.rng.choice(sessions)
        return self.open_session(agent)

    def drop(self, agent: AgentRef, session: SessionRef) -> None:
        with self.model.lock:
            if session in agent.sessions:
                agent.sessions.remove(session)

    def submit(self, agent: AgentRef) -> None:
        session = self.session_of(agent)
        if session is None:
            return
        tier = self.rng.choices(["INSTANT", "NOTIFY", "DELAY", "APPROVAL"], [50, 25, 15, 10])[0]
        low, high = APPROVAL_AMOUNTS if tier == "APPROVAL" else AMOUNTS[tier]
        submission = Submission(session.id, agent.id, uuid.uuid4().hex, self.rng.randint(low, high))
        self.history.add_submission(submission)
        body = {"type": "TRANSFER", "amount": str(submission.amount), "destination": "acct:chaos"}
        with session.lock:
            for attempt in range(ATTEMPTS):
                answer, _ = self.call(
                    "submit",
                    "POST",
                    "/v1/transactions",
                    headers={
                        "Authorization": f"Bearer {session.token}",
                        "Idempotency-Key": submission.key,
                    },
                    json=body,
                )
                submission.answers.append(answer)
                if not answer.unknown or self.stopping.is_set():
                    break
                time.sleep(0.1 * (attempt + 1) + self.rng.random() * 0.2)
        last = submission.answers[-1]
        if last.code in ("SESSION_REVOKED", "TOKEN_REUSED", "INVALID_TOKEN", "AGENT_TERMINATED"):
            self.drop(agent, session)
        approval = submission.amount >= APPROVAL_AMOUNTS[0]
        if approval and last.http == 202 and last.status == "QUEUED":
            with self.model.lock:
                self.model.pending_approvals.append((str(last.transaction_id), agent.id))

    def renew(self, agent: AgentRef) -> None:
        session = self.session_of(agent)
        if session is None:
            return
        with session.lock:
            answer, body = self.call(
                "renew",
                "PUT",  # the alias every version serves (DESIGN 7 names POST)
                f"/v1/sessions/{session.id}/renew",
                headers={"Authorization": f"Bearer {session.token}"},
            )
            if answer.http == 200:
                session.token = body["token"]
                return
        if answer.http is None or answer.http >= 400:
            # an unknown renewal may have rotated the token: presenting the old one later would
            # (rightly) look like token reuse, so this client lets the session go
            self.drop(agent, session)

    def decide_approval(self) -> None:
        with self.model.lock:
            if not self.model.pending_approvals:
                return
            txn_id, _agent_id = self.model.pending_approvals.pop(
                self.rng.randrange(len(self.model.pending_approvals))
            )
        if self.rng.random() < 0.3:
            self.call(
                "reject", "POST", f"/v1/transactions/{txn_id}/reject", headers=self.operator()
            )
            return
        replica = self.replica()
        answer, body = self.call("nonce", "GET", "/v1/nonce", replica=replica)
        if answer.http != 200:
            return
        signature = OWNER.header(f"approve_transaction:{txn_id}", body["nonce"])
        self.call(
            "approve",
            "POST",
            f"/v1/transactions/{txn_id}/approve",
            replica=replica,
            headers={HEADER: signature},
        )

    def generate_plans(self) -> None:
        with self.model.lock:
            groups = list(self.model.plan_groups)
        if len(groups) < 3:
            answer, body = self.call(
                "create_plan_group",
                "POST",
                "/v1/plan-groups",
                headers=self.operator(),
                json={
                    "title": "chaos",
                    "start_date": "2026-01-01",
                    "end_date": "2026-01-10",
                    "items": [{"name": "a", "units": 7}, {"name": "b", "units": 13}],
                },
            )
            if answer.http == 201:
                with self.model.lock:
                    self.model.plan_groups.append(body["id"])
            return
        group = self.rng.choice(groups)
        self.call("generate", "POST", f"/v1/plan-groups/{group}/generate", headers=self.operator())

    def read(self, agent: AgentRef) -> None:
        self.call("read_agent", "GET", f"/v1/agents/{agent.id}", headers=self.operator())

    def terminate(self, agent: AgentRef) -> None:
        answer, _ = self.call(
            "terminate", "POST", f"/v1/agents/{agent.id}/terminate", headers=self.operator()
        )
        if answer.http == 200 or answer.code == "AGENT_TERMINATED":
            agent.terminated = True
