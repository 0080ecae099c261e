"""The console's paths, and which of them the kill-switch guard lets through.

While the switch is engaged the console keeps serving its pages and its
kill-switch actions; every other console action is refused by the guard like
any other request. The allow-list names those routes exactly -- not "everything
under /console" -- so a new console action is guarded unless it is added here.
"""

from __future__ import annotations

PREFIX = "/console"

LOGIN = f"{PREFIX}/login"
LOGOUT = f"{PREFIX}/logout"
OVERVIEW = PREFIX
AGENTS = f"{PREFIX}/agents"
SESSIONS = f"{PREFIX}/sessions"
TRANSACTIONS = f"{PREFIX}/transactions"
PLAN_GROUPS = f"{PREFIX}/plan-groups"
AUDIT = f"{PREFIX}/audit"
RULES = f"{PREFIX}/rules"  # auto-stop rules (edit with the version the form showed)
WEBHOOKS = f"{PREFIX}/webhooks"  # webhooks and their deliveries
EVENTS = f"{PREFIX}/events"  # the polled fragment of new audit rows (live tail)
STATIC = f"{PREFIX}/static"
STATIC_FILES = ("console.css", "console.js")

ACTIVATE = f"{PREFIX}/kill-switch/activate"
RECOVERY = f"{PREFIX}/kill-switch/recovery"
RECOVERY_COMPLETE = f"{RECOVERY}/complete"
RECOVERY_ABORT = f"{RECOVERY}/abort"

#: Pages (GET/HEAD), served whatever the kill switch's state.
PAGES = frozenset(
    {
        LOGIN,
        OVERVIEW,
        AGENTS,
        SESSIONS,
        TRANSACTIONS,
        PLAN_GROUPS,
        AUDIT,
        RULES,
        WEBHOOKS,
        EVENTS,
        ACTIVATE,  # the confirmation page
        *(f"{STATIC}/{name}" for name in STATIC_FILES),
    }
)
#: Actions (POST) served whatever the state: signing in and out, and the kill switch itself.
KILL_SWITCH_ACTIONS = frozenset(
    {LOGIN, LOGOUT, ACTIVATE, RECOVERY, RECOVERY_COMPLETE, RECOVERY_ABORT}
)

_READ = frozenset({"GET", "HEAD"})


def allowed_while_locked(method: str, path: str) -> bool:
    """True for the console's pages and kill-switch actions (docs/console.md)."""
    if method in _READ:
        return path in PAGES
    return method == "POST" and path in KILL_SWITCH_ACTIONS
