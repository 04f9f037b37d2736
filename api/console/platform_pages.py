"""Platforms: the list, and a platform's page with its status (publish lag, what waits, what
failed and why, the robots' last runs), whose live parts the page asks for again and again.
Deliveries and robots change outside the event store, so no position says when they changed:
a live part answers once its rendering differs from the one the page shows (``since`` is a
digest of it), rendering again every second for at most ``LIVE_LONGEST`` seconds.

Admins send the failed deliveries again (what ``POST /platforms/{name}/retry`` does); admins
change the settings (what ``PUT /platforms/{name}`` does, through the same ``OrderDesk``), and
map a held order's carrier from the order's page. Credentials are write-only: the page names
the ones stored and never shows a value; an empty field keeps the stored one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from api.console.auth import AdminPost, Person, Viewer
from api.console.i18n import translator
from api.console.order_pages import held_counts, held_orders, order_context, order_url
from api.console.templating import page
from api.dependencies import ContainerDep
from api.errors import status_of
from api.wiring import Container
from ledger.errors import InvalidInput, LedgerError, NotFound
from ledger.platform_settings import FIELDS, IMPORT_FROM, TYPES
from ledger.platforms import Platform

router = APIRouter()

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
Name = Annotated[str, Path(min_length=1, max_length=64, pattern=NAME_PATTERN)]
Short = Annotated[str, Query(max_length=200)]
Count = Annotated[int, Query(ge=0, le=1_000_000)]
Field = Annotated[str, Form(max_length=1000)]
# Credential names each type reads (api/order_schemas.py); stored others are listed too.
KNOWN_CREDENTIALS = {"vtex": ("app_key", "app_token", "hook_secret"), "webhook": ("secret",)}
RESERVE_CHOICES = {"": None, "yes": True, "no": False}
BLANK_ROWS = 3
REPORT_CHARACTERS = 600
HELD_LISTED = 20
Digest = Annotated[str, Query(max_length=64)]
POSITION = "X-Ledger-Position"  # the header console.js sends back as ``since``
LIVE_EVERY = 1.0
LIVE_LONGEST = 15.0


async def _live(request: Request, render: Callable[[], Response], since: str) -> Response:
    """The live part once it differs from the one whose digest is ``since`` (204 after
    ``LIVE_LONGEST`` seconds without a change, or as soon as the page has gone)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LIVE_LONGEST
    while True:
        response = await run_in_threadpool(render)
        digest = hashlib.sha256(bytes(response.body)).hexdigest()[:32]
        if digest != since:
            response.headers[POSITION] = digest
            return response
        if loop.time() + LIVE_EVERY > deadline or await request.is_disconnected():
            return Response(status_code=204, headers={POSITION: digest})
        await asyncio.sleep(LIVE_EVERY)


def _platform_or_none(container: Container, name: str) -> Platform | None:
    try:
        return container.orders.platform(name)
    except NotFound:
        return None


# -- the list --------------------------------------------------------------------------------


def _summaries(container: Container) -> list[dict[str, Any]]:
    held = held_counts(container)
    rows = []
    for name in container.publisher.platform_names():
        platform = _platform_or_none(container, name)
        if platform is None:
            continue
        status = container.deliveries.status(name, listed=0)
        rows.append(
            {
                "name": name,
                "type": platform.type.value,
                "held": held.get(name, 0),
                "problem": container.configuration_problem(platform),
                **status,
            }
        )
    return rows


@router.get("/ui/platforms", response_class=HTMLResponse, include_in_schema=False)
def platforms_list(
    request: Request, container: ContainerDep, person: Viewer, new: Short = ""
) -> Response:
    problem = None
    if new and person.may("admin"):
        if re.fullmatch(NAME_PATTERN, new.strip()) and len(new.strip()) <= 64:
            return RedirectResponse(f"/ui/platforms/{new.strip()}", status_code=303)
        problem = translator(person.language)("plat_bad_name")
    return page(
        request,
        "platforms.html",
        person,
        rows=_summaries(container),
        problem=problem,
        new=new,
        live_url="/ui/platform-list/rows",
        since="",
    )


@router.get("/ui/platform-list/rows", response_class=HTMLResponse, include_in_schema=False)
async def platforms_rows(
    request: Request, container: ContainerDep, person: Viewer, since: Digest = ""
) -> Response:
    return await _live(
        request,
        lambda: page(request, "platform_rows.html", person, rows=_summaries(container)),
        since,
    )


# -- a platform ------------------------------------------------------------------------------


def _report(report: Any) -> str:
    text = json.dumps(report, ensure_ascii=False, default=str, sort_keys=True)
    return text if len(text) <= REPORT_CHARACTERS else text[: REPORT_CHARACTERS - 1] + "…"


def _status(container: Container, name: str, platform: Platform) -> dict[str, Any]:
    """What ``GET /platforms/{name}/status`` says, for the page (held orders from the
    order_list view)."""
    jobs = container.deliveries.jobs(f"{name}:")
    return {
        "configuration_problem": container.configuration_problem(platform),
        "held": held_orders(container, name, HELD_LISTED),
        "held_count": held_counts(container).get(name, 0),
        "deliveries": container.deliveries.status(name),
        "jobs": [
            {"name": job, "last_run_at": info["last_run_at"], "report": _report(info["report"])}
            for job, info in sorted(jobs.items())
        ],
    }


def _pairs(mapping: dict[str, str]) -> list[tuple[str, str]]:
    return sorted(mapping.items()) + [("", "")] * BLANK_ROWS


def _settings_form(platform: Platform | None) -> dict[str, Any]:
    settings = platform.settings if platform is not None else {}
    reserve = settings.get("reserve_while_pending")
    return {
        "type": settings.get("type", "webhook"),
        "base_url": settings.get("base_url") or "",
        "allow_insecure_http": bool(settings.get("allow_insecure_http")),
        "import_from": settings.get("import_from", IMPORT_FROM[0]),
        "reserve_while_pending": "" if reserve is None else ("yes" if reserve else "no"),
        "warehouses": _pairs(dict(settings.get("warehouses") or {})),
        "carriers": _pairs(dict(settings.get("carriers") or {})),
    }


def _credential_rows(platform: Platform | None, kind: str) -> list[dict[str, Any]]:
    stored = set(platform.credential_names) if platform is not None else set()
    names = list(KNOWN_CREDENTIALS.get(kind, ()))
    names += sorted(stored - set(names))
    return [{"name": name, "stored": name in stored} for name in names]


def _platform_page(
    request: Request,
    container: Container,
    person: Person,
    name: str,
    *,
    form: dict[str, Any] | None = None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    platform = _platform_or_none(container, name)
    if platform is None and not person.may("admin"):
        raise NotFound(f"no platform named {name!r}", platform=name)
    form = form or _settings_form(platform)
    return page(
        request,
        "platform.html",
        person,
        status=status,
        name=name,
        platform=platform,
        settings=platform.public() if platform is not None else None,
        form=form,
        credentials=_credential_rows(platform, form["type"]),
        types=TYPES,
        import_froms=IMPORT_FROM,
        live_url=f"/ui/platforms/{name}/live",
        since="",
        **(_status(container, name, platform) if platform is not None else {}),
        **context,
    )


@router.get("/ui/platforms/{name}/live", response_class=HTMLResponse, include_in_schema=False)
async def platform_live(
    request: Request, name: Name, container: ContainerDep, person: Viewer, since: Digest = ""
) -> Response:
    def render() -> Response:
        platform = container.orders.platform(name)
        return page(
            request,
            "platform_live.html",
            person,
            name=name,
            platform=platform,
            **_status(container, name, platform),
        )

    return await _live(request, render, since)


@router.get("/ui/platforms/{name}", response_class=HTMLResponse, include_in_schema=False)
def platform_page(
    request: Request,
    name: Name,
    container: ContainerDep,
    person: Viewer,
    saved: Short = "",
    retried: Count | None = None,
    released: Count = 0,
    mapped: Short = "",
) -> HTMLResponse:
    t = translator(person.language)
    notice = None
    if saved:
        notice = t("plat_saved", n=released)
    elif mapped:
        notice = t("plat_carrier_mapped", carrier=mapped, n=released)
    elif retried is not None:
        notice = t("plat_retried", n=retried)
    elif _platform_or_none(container, name) is None:
        notice = t("plat_new", name=name)
    return _platform_page(request, container, person, name, notice=notice)


# -- changes ---------------------------------------------------------------------------------


def _field(form: FormData, key: str) -> str:
    value = form.get(key)
    return value if isinstance(value, str) else ""


def _texts(form: FormData, key: str) -> list[str]:
    return [v if isinstance(v, str) else "" for v in form.getlist(key)]


def _rows(form: FormData, keys: str, values: str) -> list[tuple[str, str]]:
    """A mapping's rows as sent (both fields of a row), for the form to show them again."""
    return list(zip(_texts(form, keys), _texts(form, values), strict=False))


def _mapping(rows: list[tuple[str, str]], field: str) -> dict[str, str]:
    """A mapping from rows of two fields: both empty skips the row, one empty is refused."""
    mapping: dict[str, str] = {}
    for number, (key, value) in enumerate(rows, start=1):
        key, value = key.strip(), value.strip()
        if not key and not value:
            continue
        if not key or not value:
            raise InvalidInput(
                f"{field}: row {number} needs both of its fields (empty both to remove it)",
                field=field,
            )
        if key in mapping:
            raise InvalidInput(f"{field}: {key!r} appears on more than one row", field=field)
        mapping[key] = value
    return mapping


def _shown(rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in rows if k.strip() or v.strip()] + [("", "")] * BLANK_ROWS


def _credentials(form: FormData) -> dict[str, str | None]:
    changes: dict[str, str | None] = {}
    deleted = set(_texts(form, "cred_delete"))
    for name, value in zip(_texts(form, "cred_name"), _texts(form, "cred_value"), strict=False):
        if value:
            changes[name] = value
        elif name in deleted:
            changes[name] = None
    new_name, new_value = _field(form, "new_cred_name").strip(), _field(form, "new_cred_value")
    if new_name or new_value:
        if not new_name or not new_value:
            raise InvalidInput(
                "credentials: a new credential needs both a name and a value",
                field="credentials",
            )
        changes[new_name] = new_value
    return changes


def _kept(platform: Platform | None) -> dict[str, Any]:
    """The stored settings the form does not show (SKU ids, rates, intervals), kept as is."""
    if platform is None:
        return {}
    return {k: v for k, v in platform.settings.items() if k in FIELDS and k != "credentials"}


@router.post("/ui/platforms/{name}", response_class=HTMLResponse, include_in_schema=False)
async def save_platform(
    request: Request, name: Name, container: ContainerDep, person: AdminPost
) -> Response:
    form = await request.form()  # read once already by the guard: this is the same
    platform = await run_in_threadpool(_platform_or_none, container, name)
    warehouse_rows = _rows(form, "wh_ledger", "wh_platform")
    carrier_rows = _rows(form, "carrier_name", "carrier_ledger")
    shown = {
        "type": _field(form, "type"),
        "base_url": _field(form, "base_url"),
        "allow_insecure_http": bool(_field(form, "allow_insecure_http")),
        "import_from": _field(form, "import_from"),
        "reserve_while_pending": _field(form, "reserve_while_pending"),
        "warehouses": _shown(warehouse_rows),
        "carriers": _shown(carrier_rows),
    }
    try:
        warehouses = _mapping(warehouse_rows, "warehouses")
        carriers = _mapping(carrier_rows, "carriers")
        if shown["reserve_while_pending"] not in RESERVE_CHOICES:
            raise InvalidInput(
                "reserve_while_pending must be default, yes or no", field="reserve_while_pending"
            )
        body: dict[str, Any] = {
            **_kept(platform),
            "type": shown["type"],
            "base_url": shown["base_url"].strip() or None,
            "allow_insecure_http": shown["allow_insecure_http"],
            "import_from": shown["import_from"],
            "reserve_while_pending": RESERVE_CHOICES[shown["reserve_while_pending"]],
            "warehouses": warehouses,
            "carriers": carriers,
        }
        credentials = _credentials(form)
        if credentials:
            body["credentials"] = credentials
        _, released, _ = await run_in_threadpool(container.orders.configure, name, body)
    except LedgerError as error:
        problem, status = error.detail, status_of(error)
        return await run_in_threadpool(
            lambda: _platform_page(
                request, container, person, name, form=shown, problem=problem, status=status
            )
        )
    query = urlencode({"saved": "1", "released": len(released)})
    return RedirectResponse(f"/ui/platforms/{name}?{query}", status_code=303)


@router.post("/ui/platforms/{name}/carriers", response_class=HTMLResponse, include_in_schema=False)
def map_carrier(
    request: Request,
    name: Name,
    container: ContainerDep,
    person: AdminPost,
    carrier_name: Field = "",
    carrier: Field = "",
    order_id: Field = "",
) -> Response:
    """Add one carrier mapping, keeping every other setting and the credentials (a PUT of
    the stored settings with one mapping more): the orders held for that carrier are
    imported at once, by ``OrderDesk.configure``."""
    try:
        platform = container.orders.platform(name)
        if not carrier_name:
            raise InvalidInput("carrier_name is required", field="carrier_name")
        body = {**_kept(platform)}
        body["carriers"] = {**(body.get("carriers") or {}), carrier_name: carrier.strip()}
        _, released, _ = container.orders.configure(name, body)
    except LedgerError as error:
        if not order_id:
            return _platform_page(
                request, container, person, name, problem=error.detail, status=status_of(error)
            )
        since = container.movement_report.position()  # before the order: it includes this
        context = order_context(container, person, name, order_id)
        return page(
            request,
            "order.html",
            person,
            problem=error.detail,
            status=status_of(error),
            carrier_form={"carrier": carrier},
            live_url=context["order_url"] + "/live",
            since=since,
            **context,
        )
    query = urlencode({"mapped": carrier_name, "released": len(released)})
    target = order_url(name, order_id) if order_id else f"/ui/platforms/{name}"
    return RedirectResponse(f"{target}?{query}", status_code=303)


@router.post("/ui/platforms/{name}/retry", include_in_schema=False)
def retry(name: Name, container: ContainerDep, person: AdminPost) -> RedirectResponse:
    container.orders.platform(name)  # an unknown platform: 404
    retried = container.deliveries.retry_failed(name)
    return RedirectResponse(
        f"/ui/platforms/{name}?{urlencode({'retried': retried})}", status_code=303
    )
