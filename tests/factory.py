"""The one seeding vocabulary of the tests: rows in any state, and real sessions.

Two kinds of seed, on purpose:

* **rows** (:func:`agent`, :func:`session`, :func:`transaction`) inserted with
  plain SQL, for tests that need a state the domains would take several steps
  (or a clock) to reach -- an EXECUTING transaction, a half-spent session, an
  agent suspended by an operator. Tokens do not matter at this level, so a
  row-seeded session has a random token hash.
* **real objects** (:func:`issue_session`) made by the domain itself, for tests
  of tokens, renewal and authentication.

Every row function takes a :class:`~racefree.core.db.Database` (it opens its
own write transaction) or a :class:`~racefree.core.db.Tx` (it writes inside
the caller's). :func:`world` builds the populated system the kill switch tests
stop and recover.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from racefree import sessions
from racefree.client import OwnerSigner
from racefree.core.clock import Clock
from racefree.core.db import Database, Tx
from racefree.core.ids import new_id
from racefree.sessions import IssuedToken, Policy

DAY = 86400
#: an owner's key pair for tests that sign (approvals, recovery, ownership changes)
OWNER_KEY = Ed25519PrivateKey.generate()
OWNER_PUBLIC = OwnerSigner(OWNER_KEY).public_key
#: a short session policy on the test clock
POLICY = Policy(expires_in=100, max_renewals=3, absolute_lifetime=1000, min_elapsed=0.5)

OPEN = ("PENDING", "QUEUED", "EXECUTING")
CLOSED = ("SUBMITTED", "CONFIRMED", "FAILED", "CANCELLED", "EXPIRED")


@contextlib.contextmanager
def _writing(target: Database | Tx) -> Iterator[Tx]:
    if isinstance(target, Database):
        with target.write() as tx:
            yield tx
    else:
        yield target


def agent(
    target: Database | Tx,
    *,
    status: str = "ACTIVE",
    suspension_reason: str | None = None,
    owner: str | None = None,
    balance: int = 0,
    now: int = 0,
) -> str:
    """An agent row and its account (``owner``: a public key, GRACE until an approval)."""
    agent_id = new_id()
    with _writing(target) as tx:
        tx.execute(
            "INSERT INTO agents (id, name, status, suspension_reason, owner_public_key,"
            " owner_verified, created_at, updated_at)"
            " VALUES (:id, :name, :status, :reason, :owner, 0, :now, :now)",
            {
                "id": agent_id,
                "name": f"agent-{agent_id[-6:]}",
                "status": status,
                "reason": suspension_reason,
                "owner": owner,
                "now": now,
            },
        )
        tx.execute(
            "INSERT INTO accounts (agent_id, balance) VALUES (:id, :balance)",
            {"id": agent_id, "balance": balance},
        )
    return agent_id


def session(
    target: Database | Tx,
    agent_id: str,
    *,
    now: int = 0,
    constraints: Mapping[str, int] | None = None,
    revoked_at: int | None = None,
    revoke_reason: str | None = None,
    reserved: int = 0,
    spent: int = 0,
) -> str:
    """A session row: a day to live, 30 days absolute, the spending state given."""
    session_id = new_id()
    with _writing(target) as tx:
        tx.execute(
            "INSERT INTO sessions (id, agent_id, token_hash, expires_at, expires_in, max_renewals,"
            " absolute_expires_at, revoked_at, revoke_reason, constraints, spent, reserved,"
            " created_at) VALUES (:id, :agent_id, :hash, :expires_at, :day, 30, :absolute,"
            " :revoked_at, :reason, :constraints, :spent, :reserved, :now)",
            {
                "id": session_id,
                "agent_id": agent_id,
                "hash": secrets.token_hex(32),
                "expires_at": now + DAY,
                "day": DAY,
                "absolute": now + 30 * DAY,
                "revoked_at": revoked_at,
                "reason": revoke_reason,
                "constraints": json.dumps(dict(constraints)) if constraints else None,
                "spent": spent,
                "reserved": reserved,
                "now": now,
            },
        )
    return session_id


def transaction(
    target: Database | Tx,
    agent_id: str,
    session_id: str,
    *,
    status: str,
    amount: int,
    now: int = 0,
) -> str:
    """A TRANSFER row in ``status`` (no reservation is made: pass the session's ``reserved``)."""
    txn_id = new_id()
    with _writing(target) as tx:
        tx.execute(
            "INSERT INTO transactions (id, agent_id, session_id, type, amount, destination,"
            " status, tier, created_at, updated_at) VALUES (:id, :agent_id, :session_id,"
            " 'TRANSFER', :amount, 'dest', :status, 'INSTANT', :now, :now)",
            {
                "id": txn_id,
                "agent_id": agent_id,
                "session_id": session_id,
                "amount": amount,
                "status": status,
                "now": now,
            },
        )
    return txn_id


def issue_session(
    db: Database, clock: Clock, agent_id: str, policy: Policy = POLICY, **kwargs: object
) -> IssuedToken:
    """A real session, issued by the sessions domain (its token works)."""
    with db.write() as tx:
        return sessions.issue(tx, agent_id, now=clock.now(), policy=policy, **kwargs)  # type: ignore[arg-type]


@dataclass
class World:
    """A populated system: what an activation must stop, and what it must leave alone."""

    active_agents: list[str] = field(default_factory=list)
    operator_suspended: list[str] = field(default_factory=list)
    terminated: list[str] = field(default_factory=list)
    live_sessions: list[str] = field(default_factory=list)
    revoked_sessions: list[str] = field(default_factory=list)
    open_transactions: list[str] = field(default_factory=list)
    closed_transactions: list[str] = field(default_factory=list)
    #: session id -> what its open transactions reserved
    reserved: dict[str, int] = field(default_factory=dict)


def world(db: Database, *, agents: int = 3, sessions_per_agent: int = 2, now: int = 0) -> World:
    """Agents with live sessions, open and finished transactions, plus bystanders."""
    w = World()
    with db.write() as tx:
        for _ in range(agents):
            a = agent(tx, now=now)
            w.active_agents.append(a)
            for _ in range(sessions_per_agent):
                amounts = [10, 20, 30]
                s = session(tx, a, reserved=sum(amounts) + 5, spent=100, now=now)
                w.live_sessions.append(s)
                w.reserved[s] = sum(amounts)
                for status, amount in zip(OPEN, amounts, strict=True):
                    w.open_transactions.append(
                        transaction(tx, a, s, status=status, amount=amount, now=now)
                    )
                for status in CLOSED:
                    w.closed_transactions.append(
                        transaction(tx, a, s, status=status, amount=7, now=now)
                    )
        held = agent(tx, status="SUSPENDED", suspension_reason="operator", now=now)
        w.operator_suspended.append(held)
        w.revoked_sessions.append(
            session(tx, held, revoked_at=now - 10, revoke_reason="operator", now=now)
        )
        w.terminated.append(agent(tx, status="TERMINATED", now=now))
    return w
