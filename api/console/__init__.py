"""The operator console: server-rendered pages under ``/ui/`` for people, signed in with a name
and a password. Everything it loads is served from ``/ui/static``: no third-party host."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.console import (
    form_pages,
    import_pages,
    order_pages,
    platform_pages,
    report_pages,
    scan_pages,
    session_pages,
    stock_pages,
)
from api.console.changes import Watches
from api.console.templating import HERE


def install(app: FastAPI) -> None:
    for module in (
        session_pages,
        stock_pages,
        form_pages,
        report_pages,
        import_pages,
        scan_pages,
        order_pages,
        platform_pages,
    ):
        app.include_router(module.router)
    app.state.console_watches = Watches()
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="console_static")
