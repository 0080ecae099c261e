"""Settings for the events tests: the test receiver's host allowed, fast retries."""

from __future__ import annotations

import pytest

from racefree.settings import Settings
from tests.conftest import TEST_POOL_SIZE

FAST = {
    "webhook_allowed_hosts": "127.0.0.1",
    "webhook_backoff_base_s": 0.05,
    "webhook_backoff_max_s": 1.0,
    "webhook_lease_ttl_s": 10.0,
    "webhook_timeout_s": 5.0,
    "events_poll_interval_s": 0.05,
    "events_heartbeat_s": 0.3,
}


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url, db_pool_size=TEST_POOL_SIZE, **FAST)
