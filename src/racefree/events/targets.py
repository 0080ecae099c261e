"""Where webhooks may send: only to hosts the operator listed.

``RACEFREE_WEBHOOK_ALLOWED_HOSTS`` is a comma-separated list of host names or
addresses (``hooks.example.com,127.0.0.1``); empty (the default) allows none.
Without the list, anyone holding an operator token could make the server send
requests to internal addresses (metadata services, admin ports). The host is
checked when a webhook is created or changed and again before every delivery
(the list may have shrunk); redirects are never followed.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from racefree.core.errors import invalid_field

MAX_URL_LENGTH = 2048
SCHEMES = ("http", "https")


def allowed_hosts(setting: str) -> frozenset[str]:
    return frozenset(h.strip().lower().strip("[]") for h in setting.split(",") if h.strip())


def _sendable(url: str) -> bool:
    """No whitespace or control characters (``urlsplit`` silently drops tabs and newlines,
    the HTTP client refuses them) and nothing that cannot be encoded (lone surrogates)."""
    return all(ch.isprintable() and not ch.isspace() for ch in url)


def host_of(url: str) -> str | None:
    if not _sendable(url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a malformed port
        sent = httpx.URL(url)  # what the deliverer will actually connect to
    except (ValueError, httpx.InvalidURL):
        return None
    if parts.scheme not in SCHEMES or not parts.hostname or parts.username or parts.password:
        return None
    host = parts.hostname.lower()
    if sent.host.lower() != host or sent.port not in (port, None) or sent.userinfo:
        return None  # the two parsers disagree: refuse rather than guess which one is right
    return host


def refusal(url: str, allowed: frozenset[str]) -> str | None:
    """Why ``url`` may not be a webhook target, or None when it may."""
    if len(url) > MAX_URL_LENGTH:
        return f"the url is longer than {MAX_URL_LENGTH} characters"
    if not _sendable(url):
        return "the url must not contain spaces or control characters"
    host = host_of(url)
    if host is None:
        return "the url must be http:// or https:// with a host and no credentials"
    if host not in allowed:
        return f"host {host!r} is not in RACEFREE_WEBHOOK_ALLOWED_HOSTS" + (
            "" if allowed else " (empty: no host is allowed)"
        )
    return None


def check(url: str, allowed: frozenset[str]) -> None:
    """400 ``VALIDATION_ERROR`` unless ``url`` is an allowed target."""
    why = refusal(url, allowed)
    if why is not None:
        raise invalid_field("url", why, detail=why)
