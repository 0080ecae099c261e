"""Session lifetimes and renewal (``RACEFREE_SESSION_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SessionSettings(BaseSettings):
    """Session lifetimes and renewal (``RACEFREE_SESSION_*``)."""

    model_config = SettingsConfigDict(env_prefix="RACEFREE_", extra="ignore")

    session_expires_in: int = Field(default=86400, gt=0)
    session_max_renewals: int = Field(default=30, ge=0)
    session_absolute_lifetime: int = Field(default=2_592_000, gt=0)
    session_renewal_min_elapsed: float = Field(default=0.5, ge=0.0, le=1.0)
    session_renewal_grace_s: int = Field(default=0, ge=0)
