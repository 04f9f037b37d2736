"""``create_app(settings)``: the FastAPI application with its lifespan, routers and errors."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from adapters.spreadsheets import MAX_BYTES
from api import console, errors, process_metrics
from api.body_limit import BodyLimit
from api.collector import CollectorPaused
from api.http_metrics import HttpMetricsMiddleware
from api.openapi import document_shared_responses
from api.routes import (
    catalog,
    counting,
    health,
    hooks,
    imports,
    metrics,
    movements,
    orders,
    platforms,
    report,
    stock,
    tokens,
    users,
)
from api.settings import Settings
from api.wiring import Container, build

DESCRIPTION = """
An event-sourced stock ledger. Every stock movement is an immutable event; physical, reserved
and available stock (physical - reserved) are computed per SKU and warehouse.

Every endpoint needs `Authorization: Bearer <token>` but `GET /healthz`, `GET /readyz` and a
platform's hook (`POST /platforms/{name}/hook`, authenticated by the platform's own secret).
Errors are `{"error": "<code>", "detail": "<sentence>", ...}`. Quantities are exact decimals,
accepted as JSON numbers or strings and rendered as strings.
"""


def create_app(settings: Settings | None = None, *, background: bool | None = None) -> FastAPI:
    settings = settings or Settings()
    run_background = settings.background if background is None else background

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        container: Container = build(settings)
        app.state.container = container
        if run_background:
            container.start_background()
        try:
            yield
        finally:
            container.close()
            process_metrics.forget(os.getpid())

    app = FastAPI(title="ledger", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.container = None
    app.state.metrics, http_metrics = metrics.build_registry(lambda: app.state.container)
    errors.install(app)
    for router in (
        movements.router,
        catalog.router,
        counting.router,
        imports.router,
        report.router,
        orders.router,
        platforms.router,
        hooks.router,
        stock.router,
        tokens.router,
        users.router,
        health.router,
        metrics.router,
    ):
        app.include_router(router)
    console.install(app)
    document_shared_responses(app)
    app.add_middleware(CollectorPaused, paths=frozenset({"/movements/batch"}))
    app.add_middleware(
        BodyLimit,
        default=settings.max_body_bytes,
        per_path={
            "/movements/batch": settings.max_batch_body_bytes,
            # A spreadsheet of up to 20 MiB, with the multipart envelope around it.
            "/imports": MAX_BYTES + 64 * 1024,
        },
    )
    # Outermost: it sees every answer, the body limit's 413s included.
    app.add_middleware(HttpMetricsMiddleware, metrics=http_metrics)
    return app


def api_worker() -> FastAPI:
    """The application of one API worker of ``ledger serve --workers N`` (uvicorn's factory,
    called in a process uvicorn spawned): no background work (``serve``'s background process
    does it), logging configured again (a spawned process starts without ours), and the
    process stops when ``serve`` dies, however it dies."""
    from api.cli import tune_garbage_collector
    from api.logs import configure_logging
    from api.processes import die_with_parent

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    parent = multiprocessing.parent_process()
    die_with_parent(parent.pid if parent is not None else None)
    process_metrics.register("api")
    app = create_app(settings, background=False)
    tune_garbage_collector()
    return app
