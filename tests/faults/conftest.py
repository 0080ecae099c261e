"""The transactions domain's fixtures (an agent with 1 000 000, a session, the service)."""

from tests.transactions.conftest import agent, make_service, service, session, sleeps

__all__ = ["agent", "make_service", "service", "session", "sleeps"]
