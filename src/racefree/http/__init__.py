"""The HTTP API (docs/http-api.md): FastAPI app factory, routers, auth, problem+json."""

from racefree.http.app import create_app

__all__ = ["create_app"]
