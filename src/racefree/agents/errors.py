"""Agent availability codes (AGENT_NOT_FOUND is the owners', who look agents up first)."""

from __future__ import annotations

from racefree.core.errors import Code, ErrorSpec, register


class AgentCode(Code):
    """Agent availability codes."""

    AGENT_SUSPENDED = "AGENT_SUSPENDED"
    AGENT_TERMINATED = "AGENT_TERMINATED"


register(
    ErrorSpec(
        AgentCode.AGENT_SUSPENDED,
        409,
        "AGENT",
        False,
        "Agent suspended",
        "the agent is suspended",
    ),
    ErrorSpec(
        AgentCode.AGENT_TERMINATED,
        410,
        "AGENT",
        False,
        "Agent terminated",
        "the agent was terminated",
    ),
)
