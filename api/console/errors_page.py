"""How the console shows a refusal: a page in the person's language, or a redirect to sign
in. The status is the one the API would give (``api/errors.py`` maps the family)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.console.auth import language_of
from api.console.i18n import translator
from api.console.templating import page

PREFIX = "/ui"


def is_console(request: Request) -> bool:
    path = request.url.path
    return (path == PREFIX or path.startswith(PREFIX + "/")) and not path.startswith(
        PREFIX + "/static/"
    )


def console_error(request: Request, status: int, code: str, detail: str) -> Response:
    if status == 401:
        live = request.url.path.endswith(("/live", "/rows"))
        if request.method == "GET" and not live:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/ui/sign-in?{urlencode({'next': target})}", status_code=303)
        return HTMLResponse("", status_code=401)
    t = translator(language_of(request))
    heading = {403: t("forbidden"), 404: t("not_found")}.get(status, t("error"))
    return page(
        request, "error.html", None, status=status, heading=heading, detail=detail, code=code
    )
