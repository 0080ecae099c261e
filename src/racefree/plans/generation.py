"""Plan generation under the group's lease lock, every write fenced.

The flow never holds a database write transaction while it waits::

    lock     short write: take the lease on ``plan-group:<id>`` (LockBusy -> 409
             PLAN_GENERATION_IN_PROGRESS; wait > 0 -> LOCK_TIMEOUT) -- before the group is read
    read     the group, as it is now that we hold the lock
    compute  spread the units; sleep RACEFREE_PLAN_GENERATION_DELAY_MS (the services generation
             would call) and, if RACEFREE_PLAN_GENERATION_GATE names a file, wait until this
             generation can remove it (a gate tests and drills open); a heartbeat renews the
             lease meanwhile
    write    one short write transaction whose FIRST statement is the fenced CAS
             ``UPDATE plan_groups ... WHERE fencing_token < :token AND <lease current>``;
             only if it matched: delete the previous plans, insert the new ones, audit
    release  CAS delete of the lease

A holder whose lease was taken over (it paused past its TTL, say) matches 0 rows
in the fenced CAS, so it writes nothing and gets ``LOCK_LOST``; the new
holder's plans stand.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from racefree.core import audit
from racefree.core.cas import cas_update
from racefree.core.clock import Clock
from racefree.core.db import Database, Tx
from racefree.core.errors import RacefreeError
from racefree.core.ids import new_id
from racefree.core.locks import Heartbeat, Lease, LeaseLocks, LockBusy, fence
from racefree.core.locks.lease import lock_lost
from racefree.plans import groups
from racefree.plans.errors import PlanCode
from racefree.plans.groups import PlanGroup, iso_ms
from racefree.plans.spread import Share, spread
from racefree.system.kill_switch import hold_normal

INSERT_CHUNK = 200  # plan rows per multi-row INSERT
GATE_POLL_S = 0.01


@dataclass(frozen=True, slots=True)
class Generated:
    """What a finished generation reports (the ``generate`` response)."""

    plan_group_id: str
    generation: int
    plans_created: int
    fencing_token: int
    lock_wait_ms: int


@dataclass(frozen=True, slots=True)
class Prepared:
    """A computed generation, not yet written."""

    lease: Lease
    group: PlanGroup
    shares: tuple[Share, ...]


def _epoch(ms: int | None) -> int | None:
    """An ``_epoch`` field (README, HTTP conventions): epoch seconds of an epoch in milliseconds."""
    return None if ms is None else ms // 1000


def in_progress(busy: LockBusy, group_id: str) -> RacefreeError:
    """``LockBusy`` on a group's lock, as the contract's 409."""
    return RacefreeError(
        PlanCode.PLAN_GENERATION_IN_PROGRESS,
        details={
            "plan_group_id": group_id,
            "holder": busy.holder,
            "acquired_at": iso_ms(busy.acquired_at_ms),
            "expires_at": iso_ms(busy.expires_at_ms),
            "acquired_at_epoch": _epoch(busy.acquired_at_ms),
            "expires_at_epoch": _epoch(busy.expires_at_ms),
        },
        hint="retry after Retry-After seconds, or pass ?wait=<seconds> to wait for the lock",
        retry_after=busy.retry_after,
    )


class Generator:
    """Generates a group's plans; one instance per process, shared by requests."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        locks: LeaseLocks,
        *,
        ttl_s: float,
        delay_ms: int = 0,
        max_plans: int = groups.Quotas().plans_per_generation,
        gate: Path | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.db = db
        self.clock = clock
        self.locks = locks
        self.ttl_s = ttl_s
        self.delay_ms = delay_ms
        self.max_plans = max_plans
        self.gate = gate
        self._sleep = sleep

    def generate(self, group_id: str, *, holder: str, wait_s: float = 0.0) -> Generated:
        """Lock -> read -> compute -> fenced write -> release; see the module docstring."""
        started = time.monotonic()
        lease = self.lock(group_id, holder=holder, wait_s=wait_s)
        lock_wait_ms = round((time.monotonic() - started) * 1000)
        try:
            with Heartbeat(self.locks, lease) as beat:
                prepared = self.prepare(lease, group_id)
            if beat.lost is not None:
                raise beat.lost
            return self.write(prepared, lock_wait_ms=lock_wait_ms)
        finally:
            self.locks.release(lease)

    def lock(self, group_id: str, *, holder: str, wait_s: float = 0.0) -> Lease:
        try:
            return self.locks.acquire(
                groups.lock_key(group_id), holder=holder, ttl_s=self.ttl_s, wait_s=wait_s
            )
        except LockBusy as busy:
            raise in_progress(busy, group_id) from None

    def prepare(self, lease: Lease, group_id: str) -> Prepared:
        """Read the group (under the lock) and compute its plans; no write transaction open."""
        with self.db.read() as tx:
            group = groups.get(tx, group_id)
        # before any work: a group stored under a larger quota does not generate now
        groups.check_size(group.start_date, group.end_date, group.items, self.max_plans)
        shares = spread(((i.name, i.units) for i in group.items), group.start_date, group.end_date)
        if self.delay_ms:
            self._sleep(self.delay_ms / 1000)
        if self.gate is not None:
            self._pass_gate(self.gate)
        return Prepared(lease, group, tuple(shares))

    def _pass_gate(self, gate: Path) -> None:
        """Wait until this generation removes ``gate``: one file lets exactly one through."""
        while True:
            try:
                os.unlink(gate)  # atomic: of several waiting generations, one wins the file
            except FileNotFoundError:
                self._sleep(GATE_POLL_S)
            else:
                return

    def write(self, prepared: Prepared, *, lock_wait_ms: int = 0) -> Generated:
        """The fenced write: the CAS on ``fencing_token`` first, then the plans; one short tx."""
        lease, group_id = prepared.lease, prepared.group.id
        now, now_ms = self.clock.now(), self.clock.now_ms()
        fenced = fence(lease, now_ms, self.db.dialect)
        with self.db.write() as tx:
            hold_normal(tx)  # a generation that outlived an activation writes nothing
            row = cas_update(
                tx,
                "UPDATE plan_groups SET generation = generation + 1, fencing_token = :token,"
                f" generated_at = :now WHERE id = :id AND fencing_token < :token AND {fenced.sql}",
                fenced.bind({"id": group_id, "token": lease.token, "now": now}),
                classify=lambda tx: self._fence_missed(tx, lease, group_id, now_ms),
                returning="generation",
            )
            generation = int(row["generation"])
            tx.execute("DELETE FROM plans WHERE plan_group_id = :id", {"id": group_id})
            _insert_plans(tx, group_id, generation, prepared.shares)
            audit.record(
                tx,
                "PLANS_GENERATED",
                at=now,
                actor=lease.holder,
                agent_id=prepared.group.agent_id,
                details={
                    "plan_group_id": group_id,
                    "generation": generation,
                    "plans_created": len(prepared.shares),
                    "fencing_token": lease.token,
                },
            )
        return Generated(group_id, generation, len(prepared.shares), lease.token, lock_wait_ms)

    def _fence_missed(self, tx: Tx, lease: Lease, group_id: str, now_ms: int) -> RacefreeError:
        groups.get(tx, group_id)  # PLAN_GROUP_NOT_FOUND if it is gone
        try:
            self.locks.check(tx, lease, now_ms)
        except RacefreeError as lost:
            return lost
        return lock_lost(lease, None)  # a newer token already wrote this group


def _insert_plans(tx: Tx, group_id: str, generation: int, shares: tuple[Share, ...]) -> None:
    for start in range(0, len(shares), INSERT_CHUNK):
        chunk = shares[start : start + INSERT_CHUNK]
        values, params = [], {"group": group_id, "generation": generation}
        for n, share in enumerate(chunk):
            values.append(f"(:id{n}, :group, :generation, :day{n}, :item{n}, :units{n})")
            params.update(
                {
                    f"id{n}": new_id(),
                    f"day{n}": share.day.isoformat(),
                    f"item{n}": share.item,
                    f"units{n}": share.units,
                }
            )
        tx.execute(
            "INSERT INTO plans (id, plan_group_id, generation, day, item, units) VALUES "
            + ", ".join(values),
            params,
        )


def lock_view(locks: LeaseLocks, group_id: str) -> dict[str, Any]:
    """The group's lock as ``GET /v1/plan-groups/{id}/lock`` shows it."""
    key = groups.lock_key(group_id)
    lease = locks.current(key)
    if lease is None:
        return {
            "held": False,
            "holder": None,
            "acquired_at": None,
            "expires_at": None,
            "acquired_at_epoch": None,
            "expires_at_epoch": None,
            "fencing_token": locks.last_token(key),
        }
    return {
        "held": True,
        "holder": lease.holder,
        "acquired_at": iso_ms(lease.acquired_at_ms),
        "expires_at": iso_ms(lease.expires_at_ms),
        "acquired_at_epoch": lease.acquired_at_ms // 1000,
        "expires_at_epoch": lease.expires_at_ms // 1000,
        "fencing_token": lease.token,
    }
