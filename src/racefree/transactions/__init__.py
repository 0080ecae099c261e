"""Transactions: agents' spending requests, moved through a status machine by CAS only.

* :mod:`.machine` -- the status machine (docs/state-machines.md) and the record;
* :mod:`.tiers` -- INSTANT / NOTIFY / DELAY / APPROVAL by amount;
* :mod:`.idempotency` -- ``Idempotency-Key`` claims, replays, in-flight conflicts;
* :mod:`.submission` -- insert + reserve (:mod:`racefree.sessions.admission`) in one write
  transaction;
* :mod:`.executors` -- the executor protocol and the default ledger;
* :mod:`.execution` -- the loop: claim, prepare, claim SUBMITTED, submit, confirm;
* :mod:`.approvals` -- owner approval, operator rejection, expiry;
* :mod:`.service` -- all of it behind one object;
* background sweeps run from :mod:`racefree.workers` (one process at a time per worker).
"""
