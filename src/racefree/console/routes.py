"""The console's router, and how an app installs it."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.responses import FileResponse

from racefree.console import actions, killswitch, pages, paths, signin
from racefree.console.web import CsrfRefused, NotSignedIn, on_csrf_refused, on_not_signed_in

STATIC_DIR = Path(__file__).parent / "static"
_MEDIA_TYPES = {".css": "text/css", ".js": "text/javascript"}

router = APIRouter(include_in_schema=False)
for part in (signin.router, pages.router, killswitch.router, actions.router):
    router.include_router(part)


@router.api_route(f"{paths.STATIC}/{{name}}", methods=pages.READ)
def static(name: str) -> FileResponse:
    """The console's own stylesheet and script (no build step, nothing from the network)."""
    if name not in paths.STATIC_FILES:
        raise HTTPException(status_code=404)
    path = STATIC_DIR / name
    return FileResponse(
        path,
        media_type=_MEDIA_TYPES[path.suffix],
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


def install(app: FastAPI) -> None:
    """Mount the console on ``app`` (its router and its two browser-facing refusals)."""
    app.include_router(router)
    app.add_exception_handler(NotSignedIn, on_not_signed_in)
    app.add_exception_handler(CsrfRefused, on_csrf_refused)
