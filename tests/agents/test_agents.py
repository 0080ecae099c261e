"""agents: a CAS status machine, integer balances, and owner change rules."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from racefree import agents, owners
from racefree.agents import OwnerState
from racefree.agents.errors import AgentCode
from racefree.client import OwnerSigner
from racefree.core import audit
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.core.errors import Code, GeneralCode, MachineCode, RacefreeError
from racefree.owners.errors import OwnerCode
from racefree.system.errors import SystemCode
from racefree.testing import race, tally

OWNER = Ed25519PrivateKey.generate()
OWNER_KEY = OwnerSigner(OWNER).public_key
NEXT_KEY = OwnerSigner(Ed25519PrivateKey.generate()).public_key


@pytest.fixture
def agent_id(db: Database, clock: ManualClock) -> str:
    with db.write() as tx:
        return agents.create(tx, name="agent", now=clock.now()).id


def _get(db: Database, agent_id: str) -> agents.Agent:
    with db.read() as tx:
        return agents.get(tx, agent_id)


def _code(db: Database, fn, *args, **kwargs) -> Code:  # type: ignore[no-untyped-def]
    with pytest.raises(RacefreeError) as info, db.write() as tx:
        fn(tx, *args, **kwargs)
    return info.value.code


class TestLifecycle:
    def test_a_new_agent_is_active_with_an_empty_account_and_no_owner(
        self, db: Database, agent_id: str
    ) -> None:
        agent = _get(db, agent_id)
        assert (agent.status, agent.balance, agent.owner_state) == ("ACTIVE", 0, OwnerState.NONE)
        with db.read() as tx:
            assert len(audit.entries(tx, event_type="AGENT_CREATED")) == 1

    def test_blank_names_are_refused(self, db: Database, clock: ManualClock) -> None:
        assert _code(db, agents.create, name="  ", now=clock.now()) is GeneralCode.VALIDATION_ERROR

    def test_suspend_then_activate_round_trips_with_the_reason(
        self, db: Database, clock: ManualClock, agent_id: str
    ) -> None:
        with db.write() as tx:
            suspended = agents.suspend(tx, agent_id, now=clock.now())
        assert (suspended.status, suspended.suspension_reason) == ("SUSPENDED", "operator")
        with db.write() as tx:
            active = agents.activate(tx, agent_id, now=clock.now())
        assert (active.status, active.suspension_reason) == ("ACTIVE", None)

    def test_each_wrong_state_has_its_code(
        self, db: Database, clock: ManualClock, agent_id: str
    ) -> None:
        now = clock.now()
        assert _code(db, agents.activate, agent_id, now=now) is MachineCode.INVALID_STATE_TRANSITION
        with db.write() as tx:
            agents.suspend(tx, agent_id, now=now)
        assert _code(db, agents.suspend, agent_id, now=now) is AgentCode.AGENT_SUSPENDED
        with db.write() as tx:
            agents.terminate(tx, agent_id, now=now)
        for action in (agents.suspend, agents.activate, agents.terminate):
            assert _code(db, action, agent_id, now=now) is AgentCode.AGENT_TERMINATED
        assert _code(db, agents.deposit, agent_id, 5, now=now) is AgentCode.AGENT_TERMINATED
        assert _code(db, agents.suspend, "missing", now=now) is OwnerCode.AGENT_NOT_FOUND

    def test_concurrent_suspensions_have_one_winner(
        self, db: Database, clock: ManualClock, agent_id: str
    ) -> None:
        def attempt(i: int) -> None:
            with db.write() as tx:
                agents.suspend(tx, agent_id, now=clock.now())

        assert tally(race(10, attempt)) == {"won": 1, "AGENT_SUSPENDED": 9}
        with db.read() as tx:
            assert len(audit.entries(tx, event_type="AGENT_SUSPENDED")) == 1

    def test_list_pages_in_creation_order_and_filters_by_status(
        self, db: Database, clock: ManualClock, agent_id: str
    ) -> None:
        with db.write() as tx:
            second = agents.create(tx, name="second", now=clock.now()).id
            agents.suspend(tx, second, now=clock.now())
        with db.read() as tx:
            assert [a.id for a in agents.list_agents(tx)] == [agent_id, second]
            assert [a.id for a in agents.list_agents(tx, after_id=agent_id)] == [second]
            assert [a.id for a in agents.list_agents(tx, status="ACTIVE")] == [agent_id]


class TestAccounts:
    def test_concurrent_deposits_lose_no_update(
        self, db: Database, clock: ManualClock, agent_id: str
    ) -> None:
        def attempt(i: int) -> int:
            with db.write() as tx:
                return agents.deposit(tx, agent_id, i + 1, now=clock.now())

        outcomes = race(10, attempt)
        assert tally(outcomes) == {"won": 10}
        assert _get(db, agent_id).balance == sum(range(1, 11))
        assert max(o.value for o in outcomes) == 55

    @pytest.mark.parametrize("amount", [0, -1, 10**15 + 1])
    def test_out_of_range_deposits_are_validation_errors(
        self, db: Database, clock: ManualClock, agent_id: str, amount: int
    ) -> None:
        assert (
            _code(db, agents.deposit, agent_id, amount, now=clock.now())
            is GeneralCode.VALIDATION_ERROR
        )

    def test_deposit_to_a_missing_agent_is_not_found(
        self, db: Database, clock: ManualClock
    ) -> None:
        assert _code(db, agents.deposit, "missing", 1, now=clock.now()) is OwnerCode.AGENT_NOT_FOUND


def _signed(
    db: Database,
    clock: ManualClock,
    agent_id: str,
    new_key: str | None,
    signer: Ed25519PrivateKey = OWNER,
) -> owners.OwnerProof:
    with db.write() as tx:
        nonce, _ = owners.issue_nonce(tx, now=clock.now())
    header = OwnerSigner(signer).header(owners.change_action(agent_id, new_key), nonce, clock.now())
    with db.write() as tx:
        return owners.verify(
            tx, header, action=owners.change_action(agent_id, new_key), now=clock.now()
        )


def _change(
    db: Database,
    clock: ManualClock,
    agent_id: str,
    new_key: str | None,
    proof: owners.OwnerProof | None = None,
) -> OwnerState:
    with db.write() as tx:
        owners.change_owner(tx, agent_id, new_key, now=clock.now(), proof=proof)
        return agents.get(tx, agent_id).owner_state


class TestOwnerChanges:
    def test_operator_sets_changes_and_removes_while_not_locked(
        self, db: Database, clock: ManualClock, agent_id: str
    ) -> None:
        assert _change(db, clock, agent_id, OWNER_KEY) is OwnerState.GRACE
        assert _change(db, clock, agent_id, NEXT_KEY) is OwnerState.GRACE
        assert _change(db, clock, agent_id, None) is OwnerState.NONE
        with db.read() as tx:
            assert len(audit.entries(tx, event_type="OWNER_CHANGED")) == 3

    def test_an_invalid_key_is_a_validation_error(
        self, db: Database, clock: ManualClock, agent_id: str
    ) -> None:
        assert (
            _code(db, owners.change_owner, agent_id, "not-a-key", now=clock.now())
            is GeneralCode.VALIDATION_ERROR
        )

    def test_locked_ownership_cannot_be_removed_or_changed_unsigned(
        self, db: Database, clock: ManualClock, agent_id: str
    ) -> None:
        _change(db, clock, agent_id, OWNER_KEY)
        with db.write() as tx:
            owners.lock_in(tx, agent_id, owners.OwnerProof(OWNER_KEY, "x"), now=clock.now())
        assert (
            _code(db, owners.change_owner, agent_id, None, now=clock.now())
            is OwnerCode.OWNER_LOCKED
        )
        assert (
            _code(db, owners.change_owner, agent_id, NEXT_KEY, now=clock.now())
            is OwnerCode.OWNER_AUTH_REQUIRED
        )
        assert _get(db, agent_id).owner_public_key == OWNER_KEY

    def test_the_owners_signature_changes_a_locked_key_and_it_stays_locked(
        self, db: Database, clock: ManualClock, agent_id: str
    ) -> None:
        _change(db, clock, agent_id, OWNER_KEY)
        proof = _signed(db, clock, agent_id, NEXT_KEY)
        assert _change(db, clock, agent_id, NEXT_KEY, proof) is OwnerState.LOCKED
        assert _get(db, agent_id).owner_public_key == NEXT_KEY
        with db.read() as tx:
            assert len(audit.entries(tx, event_type="OWNER_VERIFIED")) == 1

    def test_a_signed_removal_is_still_refused(
        self, db: Database, clock: ManualClock, agent_id: str
    ) -> None:
        _change(db, clock, agent_id, OWNER_KEY)
        proof = _signed(db, clock, agent_id, None)
        assert (
            _code(db, owners.change_owner, agent_id, None, now=clock.now(), proof=proof)
            is OwnerCode.OWNER_LOCKED
        )

    def test_a_strangers_signature_is_owner_mismatch(
        self, db: Database, clock: ManualClock, agent_id: str
    ) -> None:
        _change(db, clock, agent_id, OWNER_KEY)
        proof = _signed(db, clock, agent_id, NEXT_KEY, signer=Ed25519PrivateKey.generate())
        assert (
            _code(db, owners.change_owner, agent_id, NEXT_KEY, now=clock.now(), proof=proof)
            is OwnerCode.OWNER_MISMATCH
        )

    def test_a_signature_for_another_change_is_refused(
        self, db: Database, clock: ManualClock, agent_id: str
    ) -> None:
        _change(db, clock, agent_id, OWNER_KEY)
        proof = _signed(db, clock, agent_id, NEXT_KEY)
        assert (
            _code(db, owners.change_owner, agent_id, OWNER_KEY, now=clock.now(), proof=proof)
            is OwnerCode.INVALID_SIGNATURE
        )

    def test_an_operator_change_racing_the_owners_lock_in_never_overwrites_a_locked_owner(
        self, db: Database, clock: ManualClock, agent_id: str
    ) -> None:
        _change(db, clock, agent_id, OWNER_KEY)

        def attempt(i: int) -> bool | None:
            with db.write() as tx:
                if i == 0:
                    return owners.lock_in(
                        tx, agent_id, owners.OwnerProof(OWNER_KEY, "x"), now=clock.now()
                    )
                owners.change_owner(tx, agent_id, NEXT_KEY, now=clock.now())
                return None

        lock, change = race(2, attempt)
        agent = _get(db, agent_id)
        if change.won:  # the change came first: the owner's lock-in no longer matches
            assert lock.code == "OWNER_MISMATCH"
            assert (agent.owner_public_key, agent.owner_state) == (NEXT_KEY, OwnerState.GRACE)
        else:
            assert lock.value is True and change.code == "OWNER_AUTH_REQUIRED"
            assert (agent.owner_public_key, agent.owner_state) == (OWNER_KEY, OwnerState.LOCKED)

    def test_two_concurrent_signed_changes_by_the_owner_have_one_winner_and_lock_in_once(
        self, db: Database, clock: ManualClock, agent_id: str
    ) -> None:
        _change(db, clock, agent_id, OWNER_KEY)
        proofs = [_signed(db, clock, agent_id, NEXT_KEY) for _ in range(2)]

        def attempt(i: int) -> None:
            with db.write() as tx:
                owners.change_owner(tx, agent_id, NEXT_KEY, now=clock.now(), proof=proofs[i])

        assert tally(race(2, attempt)) == {"won": 1, "OWNER_MISMATCH": 1}
        with db.read() as tx:
            assert len(audit.entries(tx, event_type="OWNER_VERIFIED")) == 1
        assert _get(db, agent_id).owner_public_key == NEXT_KEY


class TestKillSwitchHold:
    """agents.create and agents.activate hold the switch NORMAL themselves (library callers)."""

    def test_create_and_activate_are_refused_while_the_switch_is_engaged(
        self, db: Database, clock: ManualClock, agent_id: str
    ) -> None:
        from racefree.killswitch import activation

        with db.write() as tx:
            agents.suspend(tx, agent_id, now=clock.now())
        with db.write() as tx:
            activation.activate(tx, "drill", now=clock.now(), actor="test")
        assert _code(db, agents.create, name="late", now=clock.now()) == SystemCode.SYSTEM_LOCKED
        assert _code(db, agents.activate, agent_id, now=clock.now()) == SystemCode.SYSTEM_LOCKED
        assert _get(db, agent_id).status == agents.SUSPENDED
        with db.read() as tx:
            assert [a.name for a in agents.list_agents(tx)] == ["agent"]
