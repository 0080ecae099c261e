"""Agents: the clients that act through racefree, their status and their accounts.

An agent's status is a persisted state machine (:data:`AGENT_MACHINE`)::

    ACTIVE --suspend--> SUSPENDED --activate--> ACTIVE
    ACTIVE | SUSPENDED --terminate--> TERMINATED   (terminal; revokes its sessions)

Every move is a CAS on the expected status. Each agent has one account whose
balance is an integer in minor units; deposits add to it in SQL.
"""

from racefree.agents.accounts import deposit
from racefree.agents.lifecycle import activate, suspend, terminate
from racefree.agents.machine import ACTIVE, AGENT_MACHINE, SUSPENDED, TERMINATED
from racefree.agents.model import Agent, OwnerState
from racefree.agents.registry import create, get, list_agents

__all__ = [
    "ACTIVE",
    "AGENT_MACHINE",
    "SUSPENDED",
    "TERMINATED",
    "Agent",
    "OwnerState",
    "activate",
    "create",
    "deposit",
    "get",
    "list_agents",
    "suspend",
    "terminate",
]
