"""Domain-free primitives: database, CAS, state machines, errors, audit, clock, ids."""
