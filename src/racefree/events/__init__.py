"""Events out (docs/events.md): the audit log as a transactional outbox.

* :mod:`.outbox` -- the gap-free reading order ``(txid, id)`` below the committed head;
* :mod:`.broadcaster` -- one shared poll per process for the SSE stream's subscribers;
* :mod:`.webhooks`, :mod:`.delivery` -- webhook targets and their lease-fenced deliverer;
* :mod:`.signing`, :mod:`.secrets`, :mod:`.targets` -- Standard Webhooks signatures,
  secrets encrypted at rest, the allowed target hosts.
"""
