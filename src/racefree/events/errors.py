"""Event and webhook codes."""

from __future__ import annotations

from racefree.core.errors import Code, ErrorSpec, register


class EventCode(Code):
    """Event and webhook codes."""

    WEBHOOK_NOT_FOUND = "WEBHOOK_NOT_FOUND"


register(
    ErrorSpec(
        EventCode.WEBHOOK_NOT_FOUND,
        404,
        "EVENTS",
        False,
        "Webhook not found",
        "the webhook does not exist",
    ),
)
