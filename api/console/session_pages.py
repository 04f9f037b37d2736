"""Signing in and out, the language switch, and the console's front door."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.console.auth import COOKIE, CrossSiteRequest, SignedOut, language_of, same_origin
from api.console.i18n import COOKIE as LANG_COOKIE
from api.console.i18n import LANGUAGES, translator
from api.console.templating import page
from api.dependencies import ContainerDep

router = APIRouter()

Next = Annotated[str, Query(max_length=500)]


def _local(target: str) -> str:
    """Only a path of this console: never another site (an open redirect)."""
    if target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/stock"


@router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui", include_in_schema=False)
@router.get("/ui/", include_in_schema=False)
def home() -> RedirectResponse:
    return RedirectResponse("/ui/stock", status_code=303)


@router.get("/ui/sign-in", response_class=HTMLResponse, include_in_schema=False)
def sign_in_page(request: Request, next: Next = "/ui/stock") -> HTMLResponse:
    return page(request, "sign_in.html", None, next=_local(next), name="")


@router.post("/ui/sign-in", include_in_schema=False)
async def sign_in(
    request: Request,
    container: ContainerDep,
    name: Annotated[str, Form(max_length=1000)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    next: Annotated[str, Form(max_length=500)] = "/ui/stock",
) -> Response:
    if not same_origin(request):
        raise CrossSiteRequest("this form was sent from another site")
    principal = await run_in_threadpool(container.people.sign_in, name.strip(), password)
    if principal is None:
        return page(
            request,
            "sign_in.html",
            None,
            status=401,
            next=_local(next),
            name=name,
            problem=translator(language_of(request))("bad_sign_in"),
        )
    secret, _ = await run_in_threadpool(container.sessions.open, principal.name)
    response = RedirectResponse(_local(next), status_code=303)
    response.set_cookie(
        COOKIE,
        secret,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/ui/sign-out", include_in_schema=False)
def sign_out(request: Request, container: ContainerDep, _: SignedOut) -> RedirectResponse:
    secret = request.cookies.get(COOKIE)
    if secret:
        container.sessions.close(secret)
    response = RedirectResponse("/ui/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/ui/language", include_in_schema=False)
def switch_language(
    lang: Annotated[str, Query(max_length=10)] = "en", next: Next = "/ui/stock"
) -> RedirectResponse:
    response = RedirectResponse(_local(next), status_code=303)
    if lang in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax")
    return response
