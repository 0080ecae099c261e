"""Plan group codes."""

from __future__ import annotations

from racefree.core.errors import Code, ErrorSpec, register


class PlanCode(Code):
    """Plan group codes."""

    PLAN_GROUP_NOT_FOUND = "PLAN_GROUP_NOT_FOUND"
    PLAN_GENERATION_IN_PROGRESS = "PLAN_GENERATION_IN_PROGRESS"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"


register(
    ErrorSpec(
        PlanCode.PLAN_GROUP_NOT_FOUND,
        404,
        "PLAN",
        False,
        "Plan group not found",
        "the plan group does not exist",
    ),
    ErrorSpec(
        PlanCode.PLAN_GENERATION_IN_PROGRESS,
        409,
        "PLAN",
        True,
        "Plan generation in progress",
        "another request is generating this plan group's plans",
    ),
    ErrorSpec(
        PlanCode.QUOTA_EXCEEDED,
        403,
        "GENERAL",
        False,
        "Quota exceeded",
        "a configured quota does not admit this (details: quota, limit)",
    ),
)
