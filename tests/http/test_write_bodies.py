"""A property over every write route: hostile bodies get a documented 4xx and change nothing.

For each POST/PATCH/PUT/DELETE route of the real app, on both engines,
hypothesis sends arbitrary JSON values, arbitrary strings and bytes (as a JSON
body that is not JSON), and objects whose keys are the route's own field
names with arbitrary values. Path parameters are real ids (an agent, its
session, a plan group, a queued transaction), so bodies reach the handlers.

Every answer must be below 500 and documented for that operation in
``/openapi.json``; every refused one (>= 400) is problem+json and leaves
every table exactly as it was (a snapshot of all rows before and after).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from racefree.core.db import Database
from racefree.http.app import ROUTERS
from racefree.killswitch import policy
from racefree.schema import metadata
from racefree.settings import Settings
from tests.conftest import TEST_POOL_SIZE
from tests.http.world import World, make_world

PROBLEM = "application/problem+json"
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
#: Routes an agent session calls; every other write route is an operator's.
SESSION_ROUTES = {
    ("POST", "/v1/transactions"),
    ("PUT", "/v1/sessions/{session_id}/renew"),
    ("POST", "/v1/plan-groups"),
}
#: A valid body for this route stops the whole system (every later example would be 503):
#: its property runs on bodies that do not activate.
ACTIVATION = ("POST", "/v1/kill-switch/activate")


def _write_routes() -> list[tuple[str, str]]:
    found = set()
    for router in ROUTERS:
        for route in router.routes:
            if isinstance(route, APIRoute):
                found |= {(m, route.path) for m in route.methods & WRITE_METHODS}
    return sorted(found)


WRITE_ROUTES = _write_routes()


@pytest.fixture(name="settings")
def world_settings(db_url: str) -> Settings:
    """The world's webhook may target 127.0.0.1; nothing delivers to it (no row moves
    behind a snapshot's back)."""
    return Settings(
        database_url=db_url,
        db_pool_size=TEST_POOL_SIZE,
        webhook_allowed_hosts="127.0.0.1",
        webhook_delivery_enabled=False,
    )


@pytest.fixture
def world(
    client: TestClient, operator_headers: dict[str, str], db: Database, settings: Settings
) -> World:
    # as `racefree serve` does at first start: the recovery policy is stored before any
    # request, so a refused recovery start cannot be the one that stores it
    policy.current(db, settings, now=0)
    return make_world(client, operator_headers)


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    with db.read() as tx:
        for table in metadata.sorted_tables:
            rows = tx.all(f"SELECT * FROM {table.name}")
            tables[table.name] = sorted(tuple(r.values()) for r in rows)
    return tables


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _fields(operation: dict[str, Any], components: dict[str, Any]) -> list[str]:
    content = operation.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema")
    if schema is None:
        return []
    return sorted(_resolve(schema, components).get("properties", {}))


_CHARS = st.characters(exclude_categories=("Cs",))  # NUL and control characters included
TEXT = st.text(_CHARS)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(_CHARS, max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


@dataclass(frozen=True)
class Body:
    """One hostile body: a JSON value, or raw text/bytes claiming to be JSON."""

    json_value: Any = None
    raw: bytes | None = None

    def send(self, client: TestClient, method: str, url: str, headers: dict[str, str]) -> Any:
        if self.raw is not None:
            return client.request(
                method,
                url,
                content=self.raw,
                headers={**headers, "content-type": "application/json"},
            )
        return client.request(method, url, json=self.json_value, headers=headers)


def bodies(fields: list[str]) -> st.SearchStrategy[Body]:
    options = [
        JSON.map(lambda v: Body(json_value=v)),
        TEXT.map(lambda t: Body(raw=t.encode("utf-8", "surrogatepass"))),
        st.binary(max_size=64).map(lambda b: Body(raw=b)),
    ]
    if fields:  # the route's own fields with arbitrary values reach the deeper checks
        options.append(
            st.dictionaries(st.sampled_from(fields), JSON | TEXT, max_size=len(fields)).map(
                lambda d: Body(json_value=d)
            )
        )
    return st.one_of(options)


def _activates(body: Body) -> bool:
    value = body.json_value
    if body.raw is not None:
        try:
            value = json.loads(body.raw)
        except ValueError:
            return False
    return isinstance(value, dict) and set(value) == {"reason"} and isinstance(value["reason"], str)


@pytest.mark.parametrize(
    ("method", "path"), WRITE_ROUTES, ids=[f"{m} {p}" for m, p in WRITE_ROUTES]
)
def test_refused_write_bodies_are_documented_4xx_and_change_nothing(
    client: TestClient, world: World, db: Database, method: str, path: str
) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"][path][method.lower()]
    documented = {int(s) for s in operation["responses"] if s.isdigit()}
    fields = _fields(operation, spec["components"]["schemas"])
    url = path.format(**world.ids)
    headers = world.session if (method, path) in SESSION_ROUTES else world.operator

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(body=bodies(fields))
    def refused_bodies_change_nothing(body: Body) -> None:
        if (method, path) == ACTIVATION and _activates(body):
            return
        before = snapshot(db)
        response: httpx.Response = body.send(client, method, url, headers)
        assert response.status_code < 500, response.text
        assert response.status_code in documented, (response.status_code, response.text)
        if response.status_code >= 400:
            assert response.headers["content-type"] == PROBLEM, response.text
            assert snapshot(db) == before, response.text

    refused_bodies_change_nothing()
