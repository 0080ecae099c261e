"""The HTTP API (DESIGN section 7): FastAPI app factory, routers, auth, problem+json."""

from racefree.http.app import create_app

__all__ = ["create_app"]
