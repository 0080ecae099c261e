"""racefree benchmarks: ``make bench`` (``python -m bench``)."""
