"""racefree.testing's race helpers: barrier start, every outcome kept, tallies by code."""

from __future__ import annotations

import threading

import pytest

from racefree.client import errors
from racefree.core.errors import RacefreeError
from racefree.sessions.errors import SessionCode
from racefree.testing import Outcome, race, tally, tally_responses
from racefree.testing.server import Server


def test_race_releases_every_racer_together_and_keeps_every_outcome() -> None:
    arrived = threading.Barrier(8, timeout=10)  # deadlocks unless all 8 run at once

    def attempt(i: int) -> int:
        arrived.wait()
        if i % 2:
            raise RacefreeError(SessionCode.RENEWAL_CONFLICT)
        return i

    outcomes = race(8, attempt)
    assert [o.won for o in outcomes] == [True, False] * 4
    assert outcomes.values == [0, 2, 4, 6]
    assert outcomes.tally() == tally(outcomes) == {"won": 4, "RENEWAL_CONFLICT": 4}


def test_race_takes_callables_without_an_index_and_tallies_client_errors() -> None:
    calls = []

    def attempt() -> None:
        calls.append(1)
        raise errors.KillSwitchAlreadyActiveError("already", status=409)

    assert race(3, attempt).tally() == {"KILL_SWITCH_ALREADY_ACTIVE": 3}
    assert len(calls) == 3


def test_an_outcome_without_a_catalog_code_is_named_by_its_class() -> None:
    assert Outcome(error=ValueError("x")).code == "ValueError"
    assert Outcome(value=1).code is None


@pytest.mark.server
def test_the_plugin_fixture_serves_with_its_credentials(racefree_server: Server) -> None:
    with racefree_server.api() as ops:
        assert ops.health().status == "ok"
        agent = ops.agents.create("plugin")
        responses = [
            racefree_server.client().post(
                f"/v1/agents/{agent.id}/suspend", headers=racefree_server.operator_headers()
            )
            for _ in range(2)
        ]
        ops.kill_switch.activate("drill")
        started = ops.kill_switch.start_recovery(racefree_server.master_password)
    assert started.state == "RECOVERING"
    assert tally_responses(responses) == {"200": 1, "AGENT_SUSPENDED": 1}
