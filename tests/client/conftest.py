"""Client fixtures: the client over the in-process app, and real servers with settings."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from racefree.client import Client
from racefree.testing import Server


class Recorder:
    """httpx event hooks that keep every request and answer (tests count requests)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.responses: list[httpx.Response] = []
        self._at: dict[int, float] = {}

    def at(self, message: httpx.Request | httpx.Response) -> float:
        """When (``time.monotonic()``) a request went out or an answer came in."""
        return self._at[id(message)]

    def hooks(self) -> dict[str, list[Callable[[Any], Any]]]:
        return {"request": [self._request], "response": [self._answer]}

    def async_hooks(self) -> dict[str, list[Callable[[Any], Any]]]:
        async def request(r: httpx.Request) -> None:
            self._request(r)

        async def response(r: httpx.Response) -> None:
            self._answer(r)

        return {"request": [request], "response": [response]}

    def _request(self, request: httpx.Request) -> None:
        self._at[id(request)] = time.monotonic()
        self.requests.append(request)

    def _answer(self, response: httpx.Response) -> None:
        self._at[id(response)] = time.monotonic()
        self.responses.append(response)

    def sent(self, method: str, path_suffix: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path.endswith(path_suffix)]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def api(client: TestClient, operator_token: str) -> Iterator[Client]:
    """The client as an operator, driving the in-process app (a TestClient is an httpx.Client)."""
    yield Client(str(client.base_url), operator_token, http=client)


@pytest.fixture
def racefree_database_url(db_url: str) -> str:
    """The plugin's servers use this test's database (SQLite or PostgreSQL)."""
    return db_url


@pytest.fixture
def start(racefree_server_factory: Callable[..., Server]) -> Callable[..., Server]:
    """``start(env)``: a real server on this test's database, stopped after the test."""
    return racefree_server_factory
