"""The composition root: settings, clock, database and every service, built once.

``http``, ``cli`` and the workers take their services from here, so one process
has one executor, one lease-lock instance (whose in-process waiters a release
wakes) and one plan generator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from racefree.core.clock import Clock, SystemClock
from racefree.core.db import Database, DatabaseOptions
from racefree.core.locks import LeaseLocks
from racefree.plans import Generator
from racefree.plans.groups import Quotas
from racefree.settings import Settings
from racefree.transactions.service import Transactions


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Clock = field(default_factory=SystemClock)
    transactions: Transactions = field(init=False, repr=False)
    locks: LeaseLocks = field(init=False, repr=False)
    plan_generator: Generator = field(init=False, repr=False)
    plan_quotas: Quotas = field(init=False, repr=False)
    _closed: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        # constructing the services does no I/O: building them eagerly keeps "once" lock-free
        self.transactions = Transactions(self.db, self.clock, self.settings)
        self.locks = LeaseLocks(self.db, self.clock)
        self.plan_generator = Generator(
            self.db,
            self.clock,
            self.locks,
            ttl_s=self.settings.lock_ttl_s,
            delay_ms=self.settings.plan_generation_delay_ms,
            max_plans=self.settings.plans_per_generation,
            gate=self.settings.plan_generation_gate,
        )
        self.plan_quotas = Quotas(
            self.settings.plan_groups_per_agent, self.settings.plans_per_generation
        )

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
