"""Tiers by amount (settings): how much scrutiny a transaction gets before it runs.

``INSTANT`` and ``NOTIFY`` execute at once (``NOTIFY`` also writes a warning
audit row for the owner); ``DELAY`` waits ``RACEFREE_TIER_DELAY_S``;
``APPROVAL`` waits for the owner's signature until ``RACEFREE_TIER_APPROVAL_TTL_S``.
Each tier has an execution timeout after which a transaction that is still
running ends ``FAILED`` (``EXECUTION_TIMEOUT``).
"""

from __future__ import annotations

from racefree.transactions.machine import Tier
from racefree.transactions.settings import TransactionSettings

RUN_NOW = (Tier.INSTANT, Tier.NOTIFY)


def tier_for(amount: int, settings: TransactionSettings) -> Tier:
    if amount <= settings.tier_instant_max:
        return Tier.INSTANT
    if amount <= settings.tier_notify_max:
        return Tier.NOTIFY
    if amount <= settings.tier_delay_max:
        return Tier.DELAY
    return Tier.APPROVAL


def timeout_s(tier: Tier, settings: TransactionSettings) -> int:
    """How long a transaction of ``tier`` may take once it starts executing."""
    return {
        Tier.INSTANT: settings.tier_instant_timeout_s,
        Tier.NOTIFY: settings.tier_notify_timeout_s,
        Tier.DELAY: settings.tier_delay_timeout_s,
        Tier.APPROVAL: settings.tier_approval_timeout_s,
    }[tier]
