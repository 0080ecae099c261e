"""The project's own chaos suite (``make chaos``): replicas, a workload, faults, a checker.

See :mod:`tests.chaos.run` for a run, :mod:`tests.chaos.checker` for the invariants.
"""
