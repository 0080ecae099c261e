"""What the clients asked and were answered: the history the checker judges.

Every answer is recorded as the client saw it -- no answer at all (the
connection failed or timed out) is an answer too, an *unknown* one. The
checker compares these with the database afterwards: a client told FAILED
must not have been charged, a client told CONFIRMED must have been charged
exactly once.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

#: answers that say nothing about the outcome: ask again with the same Idempotency-Key
UNKNOWN_CODES = frozenset({"IDEMPOTENCY_KEY_IN_USE", "EXECUTOR_UNAVAILABLE", "INTERNAL_ERROR"})
TERMINAL = frozenset({"CONFIRMED", "FAILED", "CANCELLED", "EXPIRED"})


@dataclass(frozen=True, slots=True)
class Answer:
    """One response (or its absence) as the client saw it."""

    http: int | None
    code: str | None = None
    status: str | None = None
    transaction_id: str | None = None
    retry_after: str | None = None
    path: str = ""

    @classmethod
    def of(cls, response: httpx.Response | None, path: str = "") -> Answer:
        if response is None:
            return cls(None, path=path)
        try:
            body: Any = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        details = body.get("details") if isinstance(body.get("details"), dict) else {}
        assert isinstance(details, dict)
        return cls(
            response.status_code,
            code=body.get("code"),
            status=body.get("status") if response.status_code < 400 else details.get("status"),
            transaction_id=body.get("transaction_id") or details.get("transaction_id"),
            retry_after=response.headers.get("Retry-After"),
            path=path,
        )

    @property
    def unknown(self) -> bool:
        """The outcome is not known from this answer (ask again)."""
        if self.status in TERMINAL:
            return False
        if self.http is None or self.code in UNKNOWN_CODES:
            return True
        return self.http >= 500 and self.code != "SYSTEM_LOCKED"

    @property
    def final_status(self) -> str | None:
        """The terminal status this answer told the client, if any."""
        return self.status if self.status in TERMINAL else None


@dataclass
class Submission:
    """One logical transaction request: one Idempotency-Key, one or more attempts."""

    session_id: str
    agent_id: str
    key: str
    amount: int
    answers: list[Answer] = field(default_factory=list)


@dataclass
class Deposit:
    agent_id: str
    amount: int
    answer: Answer


@dataclass
class History:
    submissions: list[Submission] = field(default_factory=list)
    deposits: list[Deposit] = field(default_factory=list)
    #: every answer to every request, for the never-500 / documented-code checks
    answers: list[Answer] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    #: seconds spent inside each kind of fault (injected to healed)
    fault_seconds: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, op: str, answer: Answer) -> Answer:
        with self._lock:
            self.requests[op] += 1
            self.answers.append(answer)
        return answer

    def add_submission(self, submission: Submission) -> None:
        with self._lock:
            self.submissions.append(submission)

    def add_deposit(self, deposit: Deposit) -> None:
        with self._lock:
            self.deposits.append(deposit)

    def fault(self, kind: str, seconds: float) -> None:
        with self._lock:
            self.faults[kind] += 1
            self.fault_seconds[kind] = round(self.fault_seconds.get(kind, 0.0) + seconds, 1)

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())
