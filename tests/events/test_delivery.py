"""Webhook delivery against a real receiver on 127.0.0.1 (in-process deliverers)."""

from __future__ import annotations

import itertools
import time

import pytest
from pydantic import SecretStr
from standardwebhooks import Webhook as Verifier

from racefree import killswitch
from racefree.core import audit
from racefree.core.db import Database
from racefree.events import secrets
from racefree.events.delivery import backoff_s, retry_after_seconds
from racefree.events.secrets import SecretKeyError
from racefree.settings import Settings
from racefree.testing import race
from tests.events.hooks import deliverer, make_webhook, run_until, webhook
from tests.events.receiver import Receiver, always, sequence
from tests.events.support import held_open, record


def _activate(db: Database) -> str:
    with db.write() as tx:
        return killswitch.activate(
            tx, "test stop", now=int(time.time()), actor="operator:t"
        ).activation_id


def _audit(db: Database, event_type: str) -> list[audit.AuditEntry]:
    with db.read() as tx:
        return audit.entries(tx, event_type=event_type, limit=1000)


def _deliveries(db: Database, webhook_id: str) -> list[dict[str, object]]:
    with db.read() as tx:
        return tx.all(
            "SELECT * FROM webhook_deliveries WHERE webhook_id = :id ORDER BY id",
            {"id": webhook_id},
        )


def test_an_activation_reaches_each_webhook_once_signed_per_the_spec(
    db: Database, settings: Settings
) -> None:
    with Receiver() as first, Receiver() as second:
        hook_a, secret_a = make_webhook(db, settings, first.url, ["KILL_SWITCH_ACTIVATED"])
        hook_b, secret_b = make_webhook(db, settings, second.url, ["*"])
        activation_id = _activate(db)
        d = deliverer(db, settings)
        run_until(
            d,
            lambda: (
                len(first.succeeded()) == 1
                and any(r.payload["type"] == "KILL_SWITCH_ACTIVATED" for r in second.succeeded())
            ),
        )
        for _ in range(5):  # nothing more to deliver: no repeats
            d.run_once()
        for receiver, secret in ((first, secret_a), (second, secret_b)):
            got = [r for r in receiver.requests if r.payload["type"] == "KILL_SWITCH_ACTIVATED"]
            assert len(got) == 1
            payload = Verifier(secret).verify(got[0].body, got[0].headers)
            assert payload["data"]["details"]["activation_id"] == activation_id
            assert payload["data"]["actor"] == "operator:t"
            assert set(payload) == {"id", "type", "occurred_at", "data"}
            assert got[0].headers["webhook-id"] == str(payload["id"])
            with pytest.raises(Exception, match="signature"):  # another secret does not verify
                Verifier(secret_b if secret is secret_a else secret_a).verify(
                    got[0].body, got[0].headers
                )
        assert webhook(db, hook_a.id).cursor.id >= first.requests[0].event_id
        assert [row["outcome"] for row in _deliveries(db, hook_b.id)] == ["SUCCEEDED"] * len(
            second.requests
        )


def test_a_receiver_failing_twice_gets_the_event_on_the_third_try(
    db: Database, settings: Settings
) -> None:
    with Receiver(sequence(500, 500)) as receiver:
        hook, _ = make_webhook(db, settings, receiver.url, ["KILL_SWITCH_ACTIVATED"])
        _activate(db)
        run_until(deliverer(db, settings), lambda: len(receiver.succeeded()) == 1)
    assert [r.status for r in receiver.requests] == [500, 500, 200]
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1  # the same message
    rows = _deliveries(db, hook.id)
    assert [(r["attempt"], r["outcome"], r["status_code"]) for r in rows] == [
        (1, "FAILED", 500),
        (2, "FAILED", 500),
        (3, "SUCCEEDED", 200),
    ]
    assert webhook(db, hook.id).failures == 0


def test_retry_after_is_honoured(db: Database, settings: Settings) -> None:
    settings = settings.model_copy(update={"webhook_backoff_max_s": 60.0})
    with Receiver(sequence(503, headers={"Retry-After": "3"})) as receiver:
        hook, _ = make_webhook(db, settings, receiver.url, ["KILL_SWITCH_ACTIVATED"])
        _activate(db)
        d = deliverer(db, settings)
        run_until(d, lambda: len(receiver.requests) == 1)
        failed_at_ms = time.time() * 1000
        later = webhook(db, hook.id)
        assert later.failures == 1
        assert later.next_attempt_at_ms >= failed_at_ms + 2500  # 3 s, not the 0.05 s backoff
        d.run_once()
        assert len(receiver.requests) == 1  # not due yet


def test_backoff_grows_with_jitter_and_respects_retry_after(settings: Settings) -> None:
    tuned = settings.model_copy(update={"webhook_backoff_base_s": 1.0, "webhook_backoff_max_s": 60})
    for failures, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (10, 60.0)):
        delays = [backoff_s(failures, tuned, None) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1  # jitter
    assert backoff_s(1, tuned, 30) == 30
    assert backoff_s(1, tuned, 10_000) == 60  # capped
    assert retry_after_seconds("7", 0) == 7
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470) == 10
    assert retry_after_seconds("soon", 0) is None


def test_a_webhook_is_disabled_after_max_attempts_with_one_audit_row(
    db: Database, settings: Settings
) -> None:
    tuned = settings.model_copy(update={"webhook_max_attempts": 3})
    with Receiver(always(500)) as receiver:
        hook, _ = make_webhook(db, tuned, receiver.url, ["KILL_SWITCH_ACTIVATED"])
        _activate(db)
        d = deliverer(db, tuned)
        run_until(d, lambda: webhook(db, hook.id).status == "DISABLED")
        for _ in range(3):
            d.run_once()
    assert len(receiver.requests) == 3
    disabled = _audit(db, "WEBHOOK_DISABLED")
    assert len(disabled) == 1
    assert disabled[0].details["webhook_id"] == hook.id
    assert disabled[0].severity.value == "warning"
    assert "3 failed attempts" in (webhook(db, hook.id).disabled_reason or "")


def test_events_arrive_in_order_even_across_failures(db: Database, settings: Settings) -> None:
    with Receiver(sequence(200, 200, 500, 200, 500, 500)) as receiver:
        make_webhook(db, settings, receiver.url, ["ORDERED"])
        for _ in range(12):
            record(db, "ORDERED")
        run_until(deliverer(db, settings), lambda: len(receiver.succeeded()) == 12)
    ids = [r.event_id for r in receiver.succeeded()]
    assert ids == sorted(ids)
    assert len(set(ids)) == 12


def test_deliverers_racing_on_one_webhook_never_overlap(db: Database, settings: Settings) -> None:
    """Four deliverers (four would-be processes) on one webhook: the lease lets one at a time."""
    script = lambda _n, _b: (200, {}, 0.01)  # noqa: E731 - a slow-ish receiver
    with Receiver(script) as receiver:
        make_webhook(db, settings, receiver.url, ["RACED"])
        for _ in range(25):
            record(db, "RACED")
        racers = [deliverer(db, settings, holder=f"p{i}") for i in range(4)]
        stop = time.monotonic() + 60

        def drive(i: int) -> int:
            total = 0
            while len(receiver.succeeded()) < 25 and time.monotonic() < stop:
                total += racers[i].run_once()
            return total

        outcomes = race(4, drive)
    assert sum(o.value for o in outcomes) == 25
    ids = [r.event_id for r in receiver.requests]
    assert sorted(ids) == ids and len(set(ids)) == 25  # each once, in order
    spans = sorted((r.started, r.ended) for r in receiver.requests)
    assert all(b[0] >= a[1] for a, b in itertools.pairwise(spans))  # never concurrent


def test_the_deliverer_waits_for_a_lower_id_that_commits_last(
    engine: str, db: Database, settings: Settings
) -> None:
    if engine == "sqlite":
        pytest.skip("SQLite has one writer: B cannot take an id before A commits")
    with Receiver() as receiver:
        make_webhook(db, settings, receiver.url, ["GAP_A", "GAP_B"])
        d = deliverer(db, settings)
        with held_open(db, "GAP_A"):
            record(db, "GAP_B")
            for _ in range(5):
                d.run_once()
            assert receiver.requests == []  # B waits behind the open A
        run_until(d, lambda: len(receiver.succeeded()) == 2)
    assert [r.payload["type"] for r in receiver.requests] == ["GAP_A", "GAP_B"]


def test_a_host_removed_from_the_allow_list_is_not_called(db: Database, settings: Settings) -> None:
    with Receiver() as receiver:
        hook, _ = make_webhook(db, settings, receiver.url, ["KILL_SWITCH_ACTIVATED"])
        _activate(db)
        narrowed = settings.model_copy(update={"webhook_allowed_hosts": "hooks.example.com"})
        d = deliverer(db, narrowed)
        run_until(d, lambda: webhook(db, hook.id).failures >= 1)
        assert receiver.requests == []
    rows = _deliveries(db, hook.id)
    assert rows[0]["outcome"] == "FAILED"
    assert "not in RACEFREE_WEBHOOK_ALLOWED_HOSTS" in str(rows[0]["error"])


def test_secrets_are_stored_encrypted_and_bound_to_their_webhook(
    db: Database, settings: Settings
) -> None:
    hook, secret = make_webhook(db, settings, "http://127.0.0.1:9/x")
    assert secret.startswith("whsec_")
    assert secret.removeprefix("whsec_") not in hook.sealed_secret
    with db.write() as tx:
        box = secrets.box(tx, settings, now=0)
    assert box.open(hook.sealed_secret, hook.id) == secret
    with pytest.raises(SecretKeyError):
        box.open(hook.sealed_secret, "another-webhook-id")
    keyed = settings.model_copy(update={"webhook_secret_key": SecretStr("A" * 43)})
    with db.write() as tx, pytest.raises(SecretKeyError, match="sealed with the 'db' key"):
        secrets.box(tx, keyed, now=0).open(hook.sealed_secret, hook.id)
