"""owners: Ed25519 signatures over single-use nonces; the first one locks ownership in."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from racefree import owners
from racefree.client import OwnerSigner
from racefree.core import audit
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.core.errors import Code, RacefreeError
from racefree.owners.errors import OwnerCode
from racefree.testing import race, tally
from tests import factory

KEY = Ed25519PrivateKey.generate()
PUBLIC = OwnerSigner(KEY).public_key


def _nonce(db: Database, clock: ManualClock) -> str:
    with db.write() as tx:
        return owners.issue_nonce(tx, now=clock.now())[0]


def _verify(db: Database, clock: ManualClock, header: str | None, action: str = "approve") -> str:
    with db.write() as tx:
        return owners.verify(tx, header, action=action, now=clock.now()).public_key


@pytest.fixture
def grace_agent(db: Database) -> str:
    return factory.agent(db, owner=PUBLIC)


def test_a_valid_signature_verifies_once(db: Database, clock: ManualClock) -> None:
    nonce = _nonce(db, clock)
    header = OwnerSigner(KEY).header("approve", nonce, clock.now())
    assert _verify(db, clock, header) == PUBLIC
    with pytest.raises(RacefreeError) as info:
        _verify(db, clock, header)
    assert info.value.code is OwnerCode.INVALID_NONCE


def test_a_rolled_back_action_does_not_spend_the_nonce(db: Database, clock: ManualClock) -> None:
    nonce = _nonce(db, clock)
    header = OwnerSigner(KEY).header("approve", nonce, clock.now())
    with pytest.raises(RuntimeError), db.write() as tx:
        owners.verify(tx, header, action="approve", now=clock.now())
        raise RuntimeError("the action failed after verification")
    assert _verify(db, clock, header) == PUBLIC


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda h, n, t: None, OwnerCode.OWNER_AUTH_REQUIRED),
        (lambda h, n, t: "not-base64-json!", OwnerCode.INVALID_SIGNATURE),
        (lambda h, n, t: OwnerSigner(KEY).header("reject", n, t), OwnerCode.INVALID_SIGNATURE),
        (
            lambda h, n, t: OwnerSigner(KEY).header("approve", n, t - 301),
            OwnerCode.INVALID_SIGNATURE,
        ),
        (lambda h, n, t: OwnerSigner(KEY).header("approve", "unknown", t), OwnerCode.INVALID_NONCE),
    ],
    ids=["missing", "garbage", "other-action", "stale-timestamp", "unknown-nonce"],
)
def test_bad_signatures_are_refused_with_their_code(
    db: Database, clock: ManualClock, mutate, code: Code
) -> None:
    nonce = _nonce(db, clock)
    header = mutate(OwnerSigner(KEY).header("approve", nonce, clock.now()), nonce, clock.now())
    with pytest.raises(RacefreeError) as info:
        _verify(db, clock, header)
    assert info.value.code is code


def test_a_forged_signature_does_not_verify(db: Database, clock: ManualClock) -> None:
    nonce = _nonce(db, clock)
    other = Ed25519PrivateKey.generate()
    forged = OwnerSigner(other).header("approve", nonce, clock.now())
    payload = owners.b64url_decode(forged).replace(
        OwnerSigner(other).public_key.encode(), PUBLIC.encode()
    )
    with pytest.raises(RacefreeError) as info:
        _verify(db, clock, owners.b64url_encode(payload))
    assert info.value.code is OwnerCode.INVALID_SIGNATURE


def test_an_expired_nonce_is_invalid(db: Database, clock: ManualClock) -> None:
    nonce = _nonce(db, clock)
    clock.advance(owners.NONCE_TTL_S)
    header = OwnerSigner(KEY).header("approve", nonce, clock.now())
    with pytest.raises(RacefreeError) as info:
        _verify(db, clock, header)
    assert info.value.code is OwnerCode.INVALID_NONCE


def test_two_concurrent_owner_actions_both_succeed_and_lock_in_once(
    db: Database, clock: ManualClock, grace_agent: str
) -> None:
    headers = [OwnerSigner(KEY).header("approve", _nonce(db, clock), clock.now()) for _ in range(2)]

    def act(i: int) -> bool:
        with db.write() as tx:
            proof = owners.verify(tx, headers[i], action="approve", now=clock.now())
            return owners.lock_in(tx, grace_agent, proof, now=clock.now())

    outcomes = race(2, act)

    assert tally(outcomes) == {"won": 2}
    assert sorted(o.value for o in outcomes) == [False, True]
    with db.read() as tx:
        verified = "SELECT owner_verified FROM agents WHERE id = :id"
        assert tx.scalar(verified, {"id": grace_agent}) == 1
        assert len(audit.entries(tx, event_type="OWNER_VERIFIED")) == 1


def test_lock_in_by_a_stranger_is_owner_mismatch(
    db: Database, clock: ManualClock, grace_agent: str
) -> None:
    with pytest.raises(RacefreeError) as info, db.write() as tx:
        owners.lock_in(tx, grace_agent, owners.OwnerProof("someone-else", "x"), now=clock.now())
    assert info.value.code is OwnerCode.OWNER_MISMATCH


def test_nonce_route_issues_distinct_nonces(client: TestClient) -> None:
    first, second = client.get("/v1/nonce").json(), client.get("/v1/nonce").json()
    assert first["nonce"] != second["nonce"]
    assert first["expires_at"].endswith("Z")
