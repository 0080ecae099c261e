"""Events: the outbox, webhooks and the stream."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class EventSettings(BaseSettings):
    """Events: the outbox, webhooks and the stream."""

    model_config = SettingsConfigDict(env_prefix="RACEFREE_", extra="ignore")

    # -- issue 12: events out (stream, webhooks) -----------------------------------------
    #: how often the one shared outbox poll of a process runs (stream and deliverer)
    events_poll_interval_s: float = Field(default=0.2, gt=0)
    #: SSE heartbeat comment interval of ``GET /v1/events/stream``
    events_heartbeat_s: float = Field(default=15.0, gt=0)
    #: events buffered per stream subscriber; a subscriber further behind is disconnected
    #: (it resumes with ``Last-Event-ID``), so memory per subscriber stays bounded
    events_subscriber_buffer: int = Field(default=1000, ge=1, le=100_000)
    #: open ``GET /v1/events/stream`` connections per serving process; one more is
    #: refused (429 ``RATE_LIMITED``) before it subscribes
    events_max_streams: int = Field(default=1000, ge=1, le=100_000)
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
