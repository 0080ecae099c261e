"""Tiers, their timeouts, the executor and its retries."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TransactionSettings(BaseSettings):
    """Tiers, their timeouts, the executor and its retries."""

    model_config = SettingsConfigDict(env_prefix="RACEFREE_", extra="ignore")

    tier_instant_max: int = Field(default=1000, ge=0)
    tier_notify_max: int = Field(default=10000, ge=0)
    tier_delay_max: int = Field(default=50000, ge=0)
    tier_delay_s: int = Field(default=300, ge=0)
    #: how long an APPROVAL transaction waits for its owner before it expires
    tier_approval_ttl_s: int = Field(default=86400, gt=0)
    #: per-tier execution timeouts: past them a transaction still running ends FAILED
    tier_instant_timeout_s: int = Field(default=30, gt=0)
    tier_notify_timeout_s: int = Field(default=60, gt=0)
    tier_delay_timeout_s: int = Field(default=300, gt=0)
    tier_approval_timeout_s: int = Field(default=300, gt=0)
    #: the executor: ``package.module:factory``, an entry point of ``racefree.executors``,
    #: or unset for the internal ledger
    executor: str | None = None
    #: first backoff of a transient executor error (doubled per retry, plus jitter)
    executor_retry_base_s: float = Field(default=0.05, ge=0)
