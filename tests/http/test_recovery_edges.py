"""Recovery that cannot be jammed or made impossible (issue 9, items 2, 3 and 4).

* Item 2: a master-password attempt is reserved (counted by CAS) *before* the
  Argon2 check, so no burst gets more than five checks per window and a right
  password after the fifth wrong one is refused unchecked. Checks are counted
  by the server's own counter ``racefree_master_password_checks_total``.
* Item 3: recovery routes need the operator token *and* the master password;
  an unauthenticated caller spends no attempt and cannot roll recovery back.
* Item 4: only LOCKED owners of non-terminated agents make recovery demand an
  owner signature (and the shorter owner wait).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from racefree import operators, owners
from racefree.client import OwnerSigner
from racefree.core.clock import ManualClock
from racefree.core.db import Database
from racefree.killswitch import recovery
from racefree.testing import Server, http_race, start_server
from tests import factory

PASSWORD = "correct horse battery staple"
CHECKS = "racefree_master_password_checks_total"
RECOVERY = "/v1/kill-switch/recovery"


@pytest.fixture
def master(db: Database, clock: ManualClock) -> dict[str, str]:
    operators.bootstrap(db, master_password=PASSWORD, now=clock.now())
    return {"X-Master-Password": PASSWORD}


def _code(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/problem+json", response.text
    code: str = response.json()["code"]
    return code


def _checks(http: httpx.Client | TestClient) -> float:
    """Argon2 verifications of the master password so far, from the server's own counter."""
    for line in http.get("/metrics").text.splitlines():
        if line.startswith(CHECKS + " "):
            return float(line.split()[1])
    raise AssertionError(f"the server exposes no {CHECKS} counter")


def _failed_attempts(db: Database) -> int:
    with db.read() as tx:
        return int(tx.scalar("SELECT failed_attempts FROM kill_switch WHERE scope = 'global'"))


def _state(db: Database) -> str:
    with db.read() as tx:
        return str(tx.scalar("SELECT state FROM kill_switch WHERE scope = 'global'"))


# -- item 2: attempts reserved before the check -------------------------------------------


@pytest.fixture
def locked_server(db_url: str, tmp_path: Path) -> Any:
    srv = start_server(
        db_url,
        tmp_path,
        master_password=PASSWORD,
        env={"RACEFREE_RECOVERY_WAIT_S": "0", "RACEFREE_WORKERS_ENABLED": "false"},
    )
    try:
        with srv.client() as http:
            activated = http.post(
                "/v1/kill-switch/activate", json={"reason": "drill"}, headers=srv.operator_headers()
            )
            assert activated.status_code == 200, activated.text
        yield srv
    finally:
        srv.stop()


def _with_password(srv: Server, password: str) -> dict[str, str]:
    return {**srv.operator_headers(), "X-Master-Password": password}


@pytest.mark.server
def test_twenty_concurrent_wrong_passwords_get_exactly_five_checks(
    locked_server: Server, db: Database
) -> None:
    with locked_server.client() as http:
        before = _checks(http)
    responses = http_race(
        20, locked_server.base_url, "POST", RECOVERY, headers=_with_password(locked_server, "no")
    )
    with locked_server.client() as http:
        assert _checks(http) - before == 5
        # after the fifth failure nothing is checked, not even the right password
        right = http.post(RECOVERY, headers=_with_password(locked_server, PASSWORD))
        assert (right.status_code, _code(right)) == (429, "MASTER_PASSWORD_LOCKED")
        assert _checks(http) - before == 5
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [401] * 4 + [429] * 16
    assert {_code(r) for r in responses if r.status_code == 429} == {"MASTER_PASSWORD_LOCKED"}
    assert all(int(r.headers["retry-after"]) > 0 for r in responses if r.status_code == 429)
    assert _state(db) == "ACTIVATED"


@pytest.mark.server
def test_with_one_attempt_left_nineteen_wrong_and_one_right_get_one_check(
    locked_server: Server, db: Database
) -> None:
    with locked_server.client() as http:
        for _ in range(4):
            wrong = http.post(RECOVERY, headers=_with_password(locked_server, "no"))
            assert _code(wrong) == "INVALID_MASTER_PASSWORD"
        before = _checks(http)
    right_index = 7
    responses = http_race(
        20,
        locked_server.base_url,
        "POST",
        RECOVERY,
        headers=lambda i: _with_password(locked_server, PASSWORD if i == right_index else "no"),
    )
    with locked_server.client() as http:
        assert _checks(http) - before == 1  # one attempt was left: one check, whoever got it
    right = responses[right_index]
    others = [r for i, r in enumerate(responses) if i != right_index]
    assert {(r.status_code, _code(r)) for r in others} == {(429, "MASTER_PASSWORD_LOCKED")}
    if right.status_code == 429:  # a wrong guess took the last attempt: refused unchecked
        assert _code(right) == "MASTER_PASSWORD_LOCKED"
        assert _state(db) == "ACTIVATED"
    else:  # the right password took the last attempt: it was checked and accepted
        assert right.status_code == 202, right.text
        assert _state(db) == "RECOVERING"


# -- item 3: only authenticated operators spend attempts ---------------------------------


def _activate(client: TestClient, op: dict[str, str]) -> None:
    activated = client.post("/v1/kill-switch/activate", json={"reason": "x"}, headers=op)
    assert activated.status_code == 200, activated.text


def _recovering(client: TestClient, op: dict[str, str], master: dict[str, str]) -> None:
    _activate(client, op)
    started = client.post(RECOVERY, headers={**op, **master})
    assert started.status_code == 202, started.text


@pytest.mark.parametrize("path", [RECOVERY, f"{RECOVERY}/complete", f"{RECOVERY}/abort"])
def test_recovery_routes_need_the_operator_token_and_the_password(
    client: TestClient,
    operator_headers: dict[str, str],
    master: dict[str, str],
    db: Database,
    path: str,
) -> None:
    _activate(client, operator_headers)
    no_token = client.post(path, headers=master)
    assert (no_token.status_code, _code(no_token)) == (401, "AUTH_REQUIRED")
    forged = client.post(path, headers={**master, "Authorization": "Bearer rf_op_forged"})
    assert (forged.status_code, _code(forged)) == (401, "INVALID_TOKEN")
    no_password = client.post(path, headers=operator_headers)
    assert (no_password.status_code, _code(no_password)) == (401, "AUTH_REQUIRED")
    assert _state(db) == "ACTIVATED"


def test_an_overlong_owner_signature_is_a_400_before_any_work(
    client: TestClient, operator_headers: dict[str, str], master: dict[str, str], db: Database
) -> None:
    """The same 4096-character limit as on the approval and owner-change routes."""
    _activate(client, operator_headers)
    header = {owners.HEADER: "e" * 4097}
    refused = client.post(RECOVERY, headers={**operator_headers, **master, **header})
    assert (refused.status_code, _code(refused)) == (400, "VALIDATION_ERROR")
    assert refused.json()["details"]["issues"][0]["loc"] == ["header", owners.HEADER]
    assert _state(db) == "ACTIVATED"


def test_unauthenticated_wrong_passwords_spend_no_attempt_and_cannot_jam_recovery(
    client: TestClient,
    operator_headers: dict[str, str],
    master: dict[str, str],
    db: Database,
) -> None:
    _recovering(client, operator_headers, master)
    for _ in range(10):
        for headers in ({"X-Master-Password": "guess"}, {"X-Master-Password": PASSWORD}):
            jam = client.post(f"{RECOVERY}/abort", headers=headers)
            assert (jam.status_code, _code(jam)) == (401, "AUTH_REQUIRED")
    assert _state(db) == "RECOVERING"  # not rolled back
    assert _failed_attempts(db) == 0
    status = client.get("/v1/kill-switch", headers=operator_headers).json()
    assert status["master_password_locked"] is False
    # the real holders still act
    aborted = client.post(f"{RECOVERY}/abort", headers={**operator_headers, **master})
    assert (aborted.status_code, aborted.json()) == (200, {"state": "ACTIVATED"})


def test_an_operators_wrong_passwords_still_count_and_lock_out(
    client: TestClient,
    operator_headers: dict[str, str],
    master: dict[str, str],
    db: Database,
) -> None:
    _recovering(client, operator_headers, master)
    wrong = {**operator_headers, "X-Master-Password": "guess"}
    statuses = [client.post(f"{RECOVERY}/abort", headers=wrong).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 401, 429]
    assert _state(db) == "ACTIVATED"  # the fifth rolled recovery back (docs/operations.md)


# -- item 4: only LOCKED owners of non-terminated agents demand a signature ---------------


KEY = Ed25519PrivateKey.generate()


def _owned_agent(db: Database, clock: ManualClock, *, locked: bool, status: str = "ACTIVE") -> str:
    with db.write() as tx:
        agent_id = factory.agent(
            tx, owner=OwnerSigner(KEY).public_key, status=status, now=clock.now()
        )
        if locked:
            tx.execute("UPDATE agents SET owner_verified = 1 WHERE id = :id", {"id": agent_id})
    return agent_id


def _start(client: TestClient, headers: dict[str, str]) -> httpx.Response:
    return client.post(RECOVERY, headers=headers)


@pytest.mark.parametrize(
    ("locked", "status"),
    [(False, "ACTIVE"), (False, "TERMINATED"), (True, "TERMINATED")],
    ids=["grace", "grace-terminated", "locked-terminated"],
)
def test_a_key_nobody_holds_does_not_make_recovery_impossible(
    client: TestClient,
    operator_headers: dict[str, str],
    master: dict[str, str],
    db: Database,
    clock: ManualClock,
    runtime: Any,
    locked: bool,
    status: str,
) -> None:
    _owned_agent(db, clock, locked=locked, status=status)
    _activate(client, operator_headers)
    started = _start(client, {**operator_headers, **master})
    assert started.status_code == 202, started.text
    assert started.json()["wait_seconds"] == runtime.settings.recovery_wait_s


def test_a_locked_owner_of_a_live_agent_must_sign_and_waits_the_owner_wait(
    client: TestClient,
    operator_headers: dict[str, str],
    master: dict[str, str],
    db: Database,
    clock: ManualClock,
    runtime: Any,
) -> None:
    _owned_agent(db, clock, locked=True)
    _activate(client, operator_headers)
    headers = {**operator_headers, **master}
    missing = _start(client, headers)
    assert (missing.status_code, _code(missing)) == (401, "OWNER_AUTH_REQUIRED")
    # a GRACE owner's key is not the LOCKED owner's: it cannot stand in
    stranger = Ed25519PrivateKey.generate()
    with db.write() as tx:
        factory.agent(tx, owner=OwnerSigner(stranger).public_key, now=clock.now())
    nonce = client.get("/v1/kill-switch/nonce").json()["nonce"]
    wrong = OwnerSigner(stranger).header(recovery.OWNER_ACTION, nonce, clock.now())
    refused = _start(client, {**headers, owners.HEADER: wrong})
    assert (refused.status_code, _code(refused)) == (403, "OWNER_MISMATCH")
    nonce = client.get("/v1/kill-switch/nonce").json()["nonce"]
    signature = OwnerSigner(KEY).header(recovery.OWNER_ACTION, nonce, clock.now())
    started = _start(client, {**headers, owners.HEADER: signature})
    assert started.status_code == 202, started.text
    assert started.json()["wait_seconds"] == runtime.settings.recovery_wait_owner_s
