"""Examples of extending racefree (importable as ``examples.*`` from the repository root)."""
