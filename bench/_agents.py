"""Benchmark agents: exempt from the AutoStop rules a first start seeds.

A benchmark submits thousands of transactions per hour for one agent; the
seeded global HOURLY_RATE (50/h) and DAILY_LIMIT rules would suspend it. A
disabled agent rule of a type replaces the global one (docs/events.md): an exemption.
"""

from __future__ import annotations

import httpx

SEEDED = ("CONSECUTIVE_FAILURES", "DAILY_LIMIT", "HOURLY_RATE")


def exempt_from_auto_stop(client: httpx.Client, agent_id: str) -> None:
    """``client`` sends the operator token."""
    for rule_type in SEEDED:
        params = {"daily_max": "1"} if rule_type == "DAILY_LIMIT" else {}
        client.post(
            "/v1/auto-stop/rules",
            json={"type": rule_type, "params": params, "agent_id": agent_id, "enabled": False},
        ).raise_for_status()
