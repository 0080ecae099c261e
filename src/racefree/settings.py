"""Settings from the environment (``RACEFREE_`` prefix), docs/settings.md.

Each layer declares the settings it reads beside its code (``racefree.<layer>.settings``)
and takes only those; the app's :class:`Settings` composes them with its own
(service and workers), in the order docs/settings.md lists them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from racefree.autostop.settings import AutoStopSettings
from racefree.events.settings import EventSettings
from racefree.killswitch.settings import KillSwitchSettings
from racefree.plans.settings import PlanSettings
from racefree.sessions.settings import SessionSettings
from racefree.transactions.settings import TransactionSettings


class ServiceSettings(BaseSettings):
    """The service: database, listener, logging, the master password."""

    model_config = SettingsConfigDict(env_prefix="RACEFREE_", extra="ignore")

    database_url: str = "sqlite:///./racefree.db"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    master_password: SecretStr | None = None
    log_level: str = "info"
    #: ``json``: one JSON object per line; ``text``: ``ts LEVEL logger msg key=value``
    log_format: Literal["json", "text"] = "text"
    db_pool_size: int = Field(default=20, ge=1)
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    #: request bodies larger than this get 413 PAYLOAD_TOO_LARGE, without being read whole
    max_body_bytes: int = Field(default=1_048_576, ge=1)


class EdgeSettings(BaseSettings):
    """Conditional (``If-Match``) and idempotent (``Idempotency-Key``) requests."""

    model_config = SettingsConfigDict(env_prefix="RACEFREE_", extra="ignore")

    #: changes of versioned resources without ``If-Match`` get 428
    require_if_match: bool = False
    #: how long an ``Idempotency-Key``'s answer is kept for replays
    idempotency_ttl_s: int = Field(default=86400, gt=0)


class WorkerSettings(BaseSettings):
    """The background workers of ``racefree serve``."""

    model_config = SettingsConfigDict(env_prefix="RACEFREE_", extra="ignore")

    #: background workers of ``racefree serve`` (delayed execution, expiry, stale release)
    workers_enabled: bool = True
    worker_interval_s: float = Field(default=1.0, gt=0)
    worker_lease_ttl_s: float = Field(default=15.0, gt=0)


class Settings(
    AutoStopSettings,
    EventSettings,
    PlanSettings,
    WorkerSettings,
    TransactionSettings,
    KillSwitchSettings,
    EdgeSettings,
    SessionSettings,
    ServiceSettings,
):
    """Every setting of a racefree process."""

    model_config = SettingsConfigDict(env_prefix="RACEFREE_", extra="ignore")
