"""Who is using the console: the session cookie, the role's permission, and the forms' guard
against cross-site requests.

A page needs a signed-in person; a form post also needs the session's CSRF token in the form
and, when the browser says where the post came from (``Origin``, else ``Referer``), this very
site. The cookie is HttpOnly and SameSite=Lax, so a script cannot read it and another site's
form does not carry it; the token and the origin check hold even where SameSite does not.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from adapters.console_sessions import ConsoleSession
from api.console.i18n import COOKIE as LANG_COOKIE
from api.console.i18n import pick_language
from api.wiring import Container
from ledger.application import Principal
from ledger.errors import Forbidden, Unauthorized
from ledger.tokens import Permission, grants

COOKIE = "ledger_session"


class SignInRequired(Unauthorized):
    code = "sign_in_required"


class CrossSiteRequest(Forbidden):
    code = "cross_site_request"


@dataclass(frozen=True)
class Person:
    principal: Principal
    session: ConsoleSession
    language: str

    @property
    def name(self) -> str:
        return self.principal.name

    @property
    def role(self) -> str:
        return next(iter(self.principal.permissions)).value

    def may(self, permission: str) -> bool:
        return grants(self.principal.permissions, Permission(permission))


def language_of(request: Request) -> str:
    return pick_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def _find(container: Container, secret: str) -> tuple[Principal, ConsoleSession] | None:
    session = container.sessions.find(secret)
    if session is None:
        return None
    principal = container.people.principal(session.user_name)
    if principal is None:
        # Disabled since signing in: the session ends now, not at its idle time.
        container.sessions.close(secret)
        return None
    return principal, session


async def signed_in(request: Request) -> Person:
    container: Container = request.app.state.container
    secret = request.cookies.get(COOKIE)
    found = await run_in_threadpool(_find, container, secret) if secret else None
    if found is None:
        raise SignInRequired("sign in to use the console")
    principal, session = found
    return Person(principal, session, language_of(request))


def _requiring(permission: Permission):
    async def check(person: Annotated[Person, Depends(signed_in)]) -> Person:
        if not person.may(permission.value):
            raise Forbidden(
                f"user {person.name!r} lacks the {permission.value!r} permission",
                needed=permission.value,
            )
        return person

    return check


def same_origin(request: Request) -> bool:
    """Whether the browser says this request came from this site (or says nothing)."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return True
    # "null" (a sandboxed frame, a data: URL) has no scheme, and is refused like any other.
    parts = urlsplit(source)
    return parts.scheme in ("http", "https") and parts.netloc == request.headers.get("host")


async def _guard_form(request: Request, person: Person) -> Person:
    if not same_origin(request):
        raise CrossSiteRequest("this form was sent from another site")
    form = await request.form()
    token = form.get("csrf")
    if not isinstance(token, str) or not hmac.compare_digest(
        token.encode(), person.session.csrf_token.encode()
    ):
        raise CrossSiteRequest("the form is stale or was sent from another site: reload it")
    return person


def _posting(permission: Permission):
    check = _requiring(permission)

    # A default, not an annotation: annotations are strings here (postponed), and FastAPI
    # resolves them in the module's globals, where this closure's ``check`` is not.
    async def guard(request: Request, person: Person = Depends(check)) -> Person:  # noqa: B008
        return await _guard_form(request, person)

    return guard


Viewer = Annotated[Person, Depends(_requiring(Permission.READ))]
WriterPage = Annotated[Person, Depends(_requiring(Permission.WRITE))]
AdminPage = Annotated[Person, Depends(_requiring(Permission.ADMIN))]
# Form posts: signed in, allowed, and sent by this site's own form.
SignedOut = Annotated[Person, Depends(_posting(Permission.READ))]
WriterPost = Annotated[Person, Depends(_posting(Permission.WRITE))]
AdminPost = Annotated[Person, Depends(_posting(Permission.ADMIN))]
