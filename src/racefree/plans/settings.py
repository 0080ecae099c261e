"""Plan generation: its lease TTL, simulated latency and test gate."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PlanSettings(BaseSettings):
    """Plan generation: its lease TTL, simulated latency and test gate."""

    model_config = SettingsConfigDict(env_prefix="RACEFREE_", extra="ignore")

    plan_generation_delay_ms: int = Field(default=0, ge=0)
    #: plan groups one agent may own (operators' groups are not counted)
    plan_groups_per_agent: int = Field(default=100, ge=1)
    #: plan rows one generation may write (the sum over items of min(units, days))
    plans_per_generation: int = Field(default=10_000, ge=1)
    #: tests and drills: each generation waits, before its write, until it can remove this file
    plan_generation_gate: Path | None = None
    lock_ttl_s: float = Field(default=30.0, gt=0)
