"""OwnerSigner's headers verify with the server's verification, and name the server's actions."""

from __future__ import annotations

import pytest

from racefree import owners
from racefree.client import OwnerSigner, signing
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.core.errors import RacefreeError
from racefree.killswitch import recovery
from racefree.owners.errors import OwnerCode
from racefree.transactions import approvals


def _nonce(db: Database, clock: ManualClock) -> str:
    with db.write() as tx:
        return owners.issue_nonce(tx, now=clock.now())[0]


def test_a_signed_header_verifies_and_spends_its_nonce(db: Database, clock: ManualClock) -> None:
    signer = OwnerSigner.generate(clock=clock.now)
    header = signer.header("approve_transaction:t1", _nonce(db, clock))
    with db.write() as tx:
        proof = owners.verify(tx, header, action="approve_transaction:t1", now=clock.now())
    assert proof.public_key == signer.public_key and owners.valid_public_key(signer.public_key)
    with db.write() as tx, pytest.raises(RacefreeError) as again:
        owners.verify(tx, header, action="approve_transaction:t1", now=clock.now())
    assert again.value.code == OwnerCode.INVALID_NONCE


def test_keys_load_from_raw_or_base64url_seeds_and_never_show(db: Database) -> None:
    seed = bytes(range(32))
    assert OwnerSigner(seed).public_key == OwnerSigner(signing.b64url(seed)).public_key
    assert signing.b64url(seed) not in repr(OwnerSigner(seed))


def test_the_client_signs_the_actions_the_server_checks() -> None:
    assert signing.approve_action("t1") == approvals.approval_action("t1")
    assert signing.change_owner_action("a", "k") == owners.change_action("a", "k")
    assert signing.change_owner_action("a", None) == owners.change_action("a", None)
    assert signing.RECOVERY_ACTION == recovery.OWNER_ACTION
    assert signing.HEADER == owners.HEADER
