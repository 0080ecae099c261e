"""AutoStop triggers."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AutoStopSettings(BaseSettings):
    """AutoStop triggers."""

    model_config = SettingsConfigDict(env_prefix="RACEFREE_", extra="ignore")

    # -- issue 12: AutoStop ------------------------------------------------------------------
    #: ``daily_max`` (minor units) of the DAILY_LIMIT rule seeded at first start
    auto_stop_seed_daily_max: int = Field(default=10_000_000, ge=1, le=10**15)
