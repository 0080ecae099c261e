"""Settings from the environment (``RACEFREE_`` prefix), docs/settings.md."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
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

    session_expires_in: int = Field(default=86400, gt=0)
    session_max_renewals: int = Field(default=30, ge=0)
    session_absolute_lifetime: int = Field(default=2_592_000, gt=0)
    session_renewal_min_elapsed: float = Field(default=0.5, ge=0.0, le=1.0)
    session_renewal_grace_s: int = Field(default=0, ge=0)

    #: changes of versioned resources without ``If-Match`` get 428
    require_if_match: bool = False
    #: how long an ``Idempotency-Key``'s answer is kept for replays
    idempotency_ttl_s: int = Field(default=86400, gt=0)

    recovery_wait_s: int = Field(default=86400, ge=0)
    recovery_wait_owner_s: int = Field(default=1800, ge=0)

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
    #: background workers of ``racefree serve`` (delayed execution, expiry, stale release)
    workers_enabled: bool = True
    worker_interval_s: float = Field(default=1.0, gt=0)
    worker_lease_ttl_s: float = Field(default=15.0, gt=0)

    plan_generation_delay_ms: int = Field(default=0, ge=0)
    #: plan groups one agent may own (operators' groups are not counted)
    plan_groups_per_agent: int = Field(default=100, ge=1)
    #: plan rows one generation may write (the sum over items of min(units, days))
    plans_per_generation: int = Field(default=10_000, ge=1)
    #: tests and drills: each generation waits, before its write, until it can remove this file
    plan_generation_gate: Path | None = None
    lock_ttl_s: float = Field(default=30.0, gt=0)

    # -- issue 12: events out (stream, webhooks) -----------------------------------------
    #: how often the one shared outbox poll of a process runs (stream and deliverer)
    events_poll_interval_s: float = Field(default=0.2, gt=0)
    #: SSE heartbeat comment interval of ``GET /v1/events/stream``
    events_heartbeat_s: float = Field(default=15.0, gt=0)
    #: events buffered per stream subscriber; a subscriber further behind is disconnected
    #: (it resumes with ``Last-Event-ID``), so memory per subscriber stays bounded
    events_subscriber_buffer: int = Field(default=1000, ge=1, le=100_000)
    #: comma-separated host names or addresses webhooks may target (none by default)
    webhook_allowed_hosts: str = ""
    #: consecutive failed attempts after which a webhook is disabled
    webhook_max_attempts: int = Field(default=10, ge=1, le=1000)
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=120)
    webhook_backoff_base_s: float = Field(default=1.0, ge=0)
    webhook_backoff_max_s: float = Field(default=3600.0, ge=0)
    #: the lease one process holds while delivering one webhook's events
    webhook_lease_ttl_s: float = Field(default=30.0, gt=0)
    webhook_delivery_enabled: bool = True
    webhook_delivery_threads: int = Field(default=4, ge=1, le=64)
    #: key (32 bytes, urlsafe base64) encrypting webhook signing secrets at rest; when
    #: unset a key is made once and kept in the database (see racefree.events.secrets)
    webhook_secret_key: SecretStr | None = None

    # -- issue 12: AutoStop ------------------------------------------------------------------
    #: ``daily_max`` (minor units) of the DAILY_LIMIT rule seeded at first start
    auto_stop_seed_daily_max: int = Field(default=10_000_000, ge=1, le=10**15)
