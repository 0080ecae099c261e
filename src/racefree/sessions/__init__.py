"""Sessions: bearer tokens for agents, rotated by renewal under optimistic locking.

A token is ``rf_sess_`` + 256 random bits (base62) + a checksum; only its
SHA-256 is stored. :func:`issue` opens a session, :func:`authenticate` finds
the session of a token in one indexed lookup, :func:`renew` rotates the token
with one guarded UPDATE (``WHERE id = :id AND token_hash = :current``),
:func:`revoke` is a CAS on ``revoked_at IS NULL``, and
:func:`cleanup_expired` deletes expired sessions with a guarded DELETE.

Spending state for the transactions domain lives on the session row:
``tx_count`` counts admitted transactions (never decremented), ``reserved``
sums the amounts of admitted unfinished ones, ``spent`` the confirmed ones;
``constraints`` is JSON of integer limits (:class:`Constraints`). The
admission's CAS on that row is :mod:`.admission`'s, the settlements
:mod:`.spending`'s: no other domain writes a session row.
"""

from racefree.sessions.authentication import Authenticated, authenticate, lookup
from racefree.sessions.cleanup import cleanup_expired
from racefree.sessions.lifecycle import count_active, get, issue, list_sessions, revoke
from racefree.sessions.model import Constraints, IssuedToken, Policy, Session
from racefree.sessions.renewal import Renewal, renew
from racefree.sessions.reuse import CONFLICT_WINDOW_S, REUSE_REVOKE_REASON

__all__ = [
    "CONFLICT_WINDOW_S",
    "REUSE_REVOKE_REASON",
    "Authenticated",
    "Constraints",
    "IssuedToken",
    "Policy",
    "Renewal",
    "Session",
    "authenticate",
    "cleanup_expired",
    "count_active",
    "get",
    "issue",
    "list_sessions",
    "lookup",
    "renew",
    "revoke",
]
