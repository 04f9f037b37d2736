"""Server-rendered pages: Jinja2 templates with the person, their language and the forms'
CSRF token at hand."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.console.auth import Person, language_of
from api.console.i18n import LANGUAGES, translator
from ledger.quantities import render as render_quantity

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


def _quantity(value: Any) -> str:
    if value is None:
        return ""
    return render_quantity(value if isinstance(value, Decimal) else Decimal(str(value)))


def _moment(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        return value
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


templates.env.filters["qty"] = _quantity
templates.env.filters["moment"] = _moment


def page(
    request: Request,
    template: str,
    person: Person | None,
    /,
    *,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    language = person.language if person else language_of(request)
    return templates.TemplateResponse(
        request,
        template,
        {
            "t": translator(language),
            "lang": language,
            "languages": LANGUAGES,
            "person": person,
            "csrf": person.session.csrf_token if person else "",
            **context,
        },
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )
