"""AutoStop: automatic triggers that stop agents or the whole system (docs/events.md).

* :mod:`.alerts` -- Prometheus Alertmanager in: a firing alert labelled
  ``racefree_action="kill_switch"`` activates the kill switch, exactly once.
"""
