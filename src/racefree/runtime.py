"""The composition root: settings, clock and database, shared by ``http`` and ``cli``."""

from __future__ import annotations

from dataclasses import dataclass, field

from racefree.core.clock import Clock, SystemClock
from racefree.core.db import Database, DatabaseOptions
from racefree.core.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Clock = field(default_factory=SystemClock)
    _closed: bool = field(default=False, init=False, repr=False)

    @classmethod
    def open(cls, settings: Settings | None = None, clock: Clock | None = None) -> Runtime:
        settings = settings or Settings()
        db = Database.from_url(
            settings.database_url,
            DatabaseOptions(
                pool_size=settings.db_pool_size,
                busy_timeout_ms=settings.sqlite_busy_timeout_ms,
            ),
        )
        return cls(settings=settings, db=db, clock=clock or SystemClock())

    def close(self) -> None:
        """Close the database; safe to call again (``serve`` closes at app shutdown too)."""
        if not self._closed:
            self._closed = True
            self.db.close()
