"""The transactions domain's fixtures, for the checker's own tests."""

from tests.transactions.conftest import sleeps

__all__ = ["sleeps"]
