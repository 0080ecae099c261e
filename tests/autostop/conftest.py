"""The transactions service fixtures, for AutoStop's end-to-end tests."""

from tests.transactions.conftest import make_service, service, sleeps

__all__ = ["make_service", "service", "sleeps"]
