"""The examples run on this test's database, through the racefree pytest plugin's servers."""

from tests.client.conftest import racefree_database_url, start

__all__ = ["racefree_database_url", "start"]
