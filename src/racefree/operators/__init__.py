"""Operators and the master password: the credentials of the people who run racefree.

Operator tokens (``rf_op_...``) are stored as SHA-256 digests; the master
password as an Argon2id hash in ``system_settings``. First start creates both
exactly once, even when several processes start together (insert-if-absent).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter

from racefree.core import audit, tokens
from racefree.core.audit import Severity
from racefree.core.db import Database, Tx
from racefree.core.errors import GeneralCode, RacefreeError
from racefree.core.ids import new_id
from racefree.core.passwords import generate_password, hash_password, verify_password
from racefree.operators.errors import AuthCode
from racefree.system import settings as system_settings

#: the prefix of every operator token
OPERATOR_PREFIX = "rf_op_"
MASTER_PASSWORD_KEY = "master_password_hash"  # noqa: S105 - a key name
FIRST_OPERATOR_KEY = "first_operator_issued"
MIN_MASTER_PASSWORD_LENGTH = 12

#: Every Argon2 verification of the master password: what a guessing burst can cost (and get).
MASTER_PASSWORD_CHECKS = Counter(
    "racefree_master_password_checks_total", "Master-password hashes checked (Argon2)."
)


@dataclass(frozen=True, slots=True)
class Operator:
    id: str
    label: str


@dataclass(frozen=True, slots=True)
class FirstStart:
    """Secrets created by :func:`bootstrap`; each is shown once, then only its hash exists."""

    master_password: str | None  # None when it came from the environment
    operator_token: str | None


@dataclass(frozen=True, slots=True)
class OperatorToken:
    """An operator token as listed: never the token or its hash."""

    id: str
    label: str
    created_at: int


def create(tx: Tx, *, label: str, now: int, actor: str = "cli") -> tuple[OperatorToken, str]:
    """A new operator token and its record; the caller shows the token once."""
    token = tokens.mint(OPERATOR_PREFIX)
    operator_id = new_id()
    tx.execute(
        "INSERT INTO operators (id, token_hash, label, created_at)"
        " VALUES (:id, :token_hash, :label, :now)",
        {"id": operator_id, "token_hash": tokens.digest(token), "label": label, "now": now},
    )
    audit.record(
        tx,
        "OPERATOR_TOKEN_CREATED",
        at=now,
        severity=Severity.WARNING,
        actor=actor,
        details={"operator_id": operator_id, "label": label},
    )
    return OperatorToken(operator_id, label, now), token


def create_token(tx: Tx, *, label: str, now: int, actor: str = "cli") -> str:
    """A new operator token; the caller shows it once."""
    return create(tx, label=label, now=now, actor=actor)[1]


def list_tokens(tx: Tx, *, limit: int = 1000) -> list[OperatorToken]:
    """Every operator token's record, oldest first."""
    rows = tx.all(
        "SELECT id, label, created_at FROM operators ORDER BY created_at, id LIMIT :limit",
        {"limit": limit},
    )
    return [OperatorToken(**row) for row in rows]


def revoke(tx: Tx, operator_id: str, *, now: int, actor: str) -> OperatorToken:
    """Delete an operator token (it stops working at once); 404 ``OPERATOR_NOT_FOUND``."""
    row = tx.one(
        "DELETE FROM operators WHERE id = :id RETURNING id, label, created_at",
        {"id": operator_id},
    )
    if row is None:
        raise RacefreeError(AuthCode.OPERATOR_NOT_FOUND, details={"operator_id": operator_id})
    revoked = OperatorToken(**row)
    audit.record(
        tx,
        "OPERATOR_TOKEN_REVOKED",
        at=now,
        severity=Severity.WARNING,
        actor=actor,
        details={"operator_id": revoked.id, "label": revoked.label},
    )
    return revoked


def authenticate(tx: Tx, token: str) -> Operator:
    """The operator a token belongs to, or 401 ``INVALID_TOKEN``."""
    if not tokens.well_formed(token, OPERATOR_PREFIX):
        raise RacefreeError(AuthCode.INVALID_TOKEN)
    token_hash = tokens.digest(token)
    row = tx.one(
        "SELECT id, label, token_hash FROM operators WHERE token_hash = :h", {"h": token_hash}
    )
    if row is None or not tokens.matches(token, row["token_hash"]):
        raise RacefreeError(AuthCode.INVALID_TOKEN)
    return Operator(id=row["id"], label=row["label"])


def master_password_hash(tx: Tx) -> str | None:
    return system_settings.get(tx, MASTER_PASSWORD_KEY)


def check_master_password(tx: Tx, password: str) -> bool:
    """Whether ``password`` is the master password (one Argon2 check, counted).

    Callers that face the network reserve an attempt first
    (:mod:`racefree.killswitch.attempts`).
    """
    return matched_master_password(tx, password) is not None


def matched_master_password(tx: Tx, password: str) -> str | None:
    """The stored hash if ``password`` is the master password (one Argon2 check, counted),
    else None: what :func:`hold_master_password` holds in the step that password opens."""
    stored = master_password_hash(tx)
    if stored is None:
        return None
    MASTER_PASSWORD_CHECKS.inc()
    return stored if verify_password(stored, password) else None


def hold_master_password(tx: Tx, checked_hash: str) -> None:
    """In a step's transaction: the master password is still the one checked, and stays so
    until it commits (a rotation's CAS waits); 401 if a rotation committed since the check."""
    if not system_settings.hold_if_unchanged(tx, MASTER_PASSWORD_KEY, checked_hash):
        raise RacefreeError(
            AuthCode.INVALID_MASTER_PASSWORD, detail="the master password changed meanwhile"
        )


def rotate_master_password(db: Database, current: str, new: str, *, now: int, actor: str) -> None:
    """Replace the master password; 401 ``INVALID_MASTER_PASSWORD`` unless ``current`` is it.

    The swap is a CAS on the stored hash: of two rotations racing from one current
    password exactly one wins, the other is told its password is no longer current.
    """
    with db.read() as tx:
        stored = master_password_hash(tx)
    if stored is None:
        raise RacefreeError(AuthCode.INVALID_MASTER_PASSWORD)
    MASTER_PASSWORD_CHECKS.inc()
    if not verify_password(stored, current):
        raise RacefreeError(AuthCode.INVALID_MASTER_PASSWORD)
    if len(new) < MIN_MASTER_PASSWORD_LENGTH:
        raise RacefreeError(
            GeneralCode.VALIDATION_ERROR,
            detail=f"the new master password needs {MIN_MASTER_PASSWORD_LENGTH}+ characters",
        )
    new_hash = hash_password(new)  # outside the write transaction: Argon2 is slow on purpose
    with db.write() as tx:
        swapped = tx.execute(
            "UPDATE system_settings SET value = :new, updated_at = :now"
            " WHERE key = :k AND value = :old",
            {"k": MASTER_PASSWORD_KEY, "new": new_hash, "old": stored, "now": now},
        )
        if not swapped:
            raise RacefreeError(
                AuthCode.INVALID_MASTER_PASSWORD, detail="the master password changed meanwhile"
            )
        audit.record(tx, "MASTER_PASSWORD_ROTATED", at=now, severity=Severity.WARNING, actor=actor)


def bootstrap(db: Database, *, master_password: str | None, now: int) -> FirstStart:
    """Create the master password and a first operator token if none exist yet."""
    with db.read() as tx:
        has_password = master_password_hash(tx) is not None
        has_operator = system_settings.get(tx, FIRST_OPERATOR_KEY) is not None
    if has_password and has_operator:
        return FirstStart(None, None)
    generated = None
    password_hash = None
    if not has_password:
        # Hash outside the write transaction: Argon2 is deliberately slow.
        generated = None if master_password else generate_password()
        password_hash = hash_password(master_password or generated or "")
    with db.write() as tx:
        shown_password = None
        if password_hash is not None:
            inserted = system_settings.insert_if_absent(
                tx, MASTER_PASSWORD_KEY, password_hash, now=now
            )
            if inserted:
                shown_password = generated
                audit.record(
                    tx, "MASTER_PASSWORD_SET", at=now, severity=Severity.WARNING, actor="system"
                )
        token = None
        # The claim row is the CAS: of processes starting together exactly one inserts it.
        claimed = system_settings.insert_if_absent(tx, FIRST_OPERATOR_KEY, str(now), now=now)
        if claimed:
            token = create_token(tx, label="first-start", now=now)
    return FirstStart(shown_password, token)
