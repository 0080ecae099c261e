"""System state: the singleton rows that every layer above consults.

The kill switch's state row (read here, moved by :mod:`racefree.killswitch`)
and the ``system_settings`` key/value store live one layer above ``core`` so
that identity and entities can honour them without importing a process.
"""
