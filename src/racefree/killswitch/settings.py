"""Recovery waits, stored at first start (``RACEFREE_RECOVERY_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class KillSwitchSettings(BaseSettings):
    """Recovery waits, stored at first start (``RACEFREE_RECOVERY_*``)."""

    model_config = SettingsConfigDict(env_prefix="RACEFREE_", extra="ignore")

    recovery_wait_s: int = Field(default=86400, ge=0)
    recovery_wait_owner_s: int = Field(default=1800, ge=0)
