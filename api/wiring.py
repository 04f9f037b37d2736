"""The one place where the application, its views and their runners are built and closed."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from starlette.concurrency import run_in_threadpool

from adapters.bulk_loading import loader_for
from adapters.console_sessions import SessionStore
from adapters.credentials import CredentialStore
from adapters.database import Database, parse_database_url
from adapters.delivery_store import DeliveryStore
from adapters.dispatcher import DispatchConfig, Dispatcher, PlatformAdapter
from adapters.import_store import ImportStore
from adapters.imports import ImportDesk
from adapters.migrations import migrate
from adapters.platform_jobs import PlatformJobs
from adapters.secret_keys import load_keys
from adapters.vtex_platform import VtexPlatform
from adapters.webhook import WebhookAdapter
from api.settings import Settings
from ledger.application import LedgerApplication
from ledger.catalog import Catalog
from ledger.counting import CountDesk
from ledger.errors import InvalidInput, Unavailable, UnknownPosition, ViewLagging
from ledger.ordering import OrderDesk
from ledger.people import People
from ledger.platform_settings import check_base_url
from ledger.platforms import Platform, PlatformType
from projections.base import View
from projections.catalog import VIEWS, build_view
from projections.movement_report import MovementReportView
from projections.notify_waker import NotifyWaker
from projections.order_list import OrderListView
from projections.products import ProductsView
from projections.publisher import PublisherView
from projections.runner import PollingRunner, Runner, catch_up
from projections.status import SEEN_WITHIN, ReportedView, StatusReporter, ViewStatusStore
from projections.stock_levels import StockLevelsView


@dataclass
class Container:
    settings: Settings
    database: Database
    app: LedgerApplication
    orders: OrderDesk
    views: dict[str, View]
    deliveries: DeliveryStore
    credentials: CredentialStore
    status: ViewStatusStore
    runners: list[Runner] = field(default_factory=list)
    # PostgreSQL: one LISTEN that wakes every runner of this process.
    waker: NotifyWaker | None = None
    started: bool = False
    reporter: StatusReporter | None = None
    dispatcher: Dispatcher | None = None
    jobs: PlatformJobs | None = None
    _vtex: dict[str, tuple[tuple[dict[str, Any], int], VtexPlatform]] = field(default_factory=dict)
    _retired: list[VtexPlatform] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    catalog: Catalog = field(init=False)
    counts: CountDesk = field(init=False)
    imports: ImportDesk = field(init=False)
    people: People = field(init=False)
    sessions: SessionStore = field(init=False)

    def __post_init__(self) -> None:
        self.catalog = Catalog(self.app)
        self.counts = CountDesk(self.app, self.catalog)
        self.imports = ImportDesk(
            self.app,
            ImportStore(self.app.factory.datastore, self.database.is_postgres),  # type: ignore[attr-defined]
            self.catalog,
        )
        self.people = People(self.app)
        self.sessions = SessionStore(
            self.app.factory.datastore,  # type: ignore[attr-defined]
            self.database.is_postgres,
            idle_seconds=self.settings.session_idle_minutes * 60,
        )

    def find_products(self, q: str, limit: int = 200) -> list[str]:
        """SKUs of the products a search ``q`` finds (SKU prefix, barcode, name words), for
        the console's stock list."""
        return [row.sku for row in self.products.search_products(q, limit=limit)]

    def product_names(self, skus: list[str]) -> dict[str, str]:
        return self.products.names_of(skus)

    def skus_in_warehouse(self, warehouse: str) -> list[str]:
        """Every SKU that has a stock in ``warehouse``, from the stock-levels view (a count's
        "zero the uncounted" reads it)."""
        skus: list[str] = []
        while True:
            rows = self.stock_levels.page(
                warehouse=warehouse, after_sku=skus[-1] if skus else None, limit=1000
            )
            if not rows:
                return skus
            skus += [row.sku for row in rows]

    @property
    def stock_levels(self) -> StockLevelsView:
        return self.views["stock_levels"]  # type: ignore[return-value]

    @property
    def movement_report(self) -> MovementReportView:
        return self.views["movement_report"]  # type: ignore[return-value]

    @property
    def order_list(self) -> OrderListView:
        return self.views["order_list"]  # type: ignore[return-value]

    @property
    def publisher(self) -> PublisherView:
        return self.views["publisher"]  # type: ignore[return-value]

    @property
    def products(self) -> ProductsView:
        return self.views["products"]  # type: ignore[return-value]

    def adapter_for(self, platform: Platform) -> PlatformAdapter | None:
        """A fresh adapter for the dispatcher, which closes it when the settings change.

        Raises ``Unavailable`` (``CredentialsUnavailable`` for credentials) with a sentence
        saying why, for this platform alone, when its stored settings or credentials cannot
        be used: the dispatcher and the robots carry on with the other platforms."""
        timeout = self.settings.platform_timeout
        if platform.type is PlatformType.VTEX:
            self._check_settings(platform)
            return VtexPlatform(platform, self.credentials.read(platform), timeout=timeout)
        if platform.type is PlatformType.WEBHOOK:
            self._check_settings(platform)
            return WebhookAdapter(platform, self.credentials.read(platform), timeout=timeout)
        return None

    def vtex(self, platform: Platform) -> VtexPlatform:
        """The VTEX client of the robot and the hook, kept while the settings and credentials
        stay the same. Raises like ``adapter_for``."""
        seen = (platform.settings, platform.credentials_revision)
        known = self._vtex.get(platform.name)
        if known is not None and known[0] == seen:
            return known[1]
        self._check_settings(platform)
        credentials = self.credentials.read(platform)
        # A short timeout: VTEX wants a hook answered within 5 s.
        vtex = VtexPlatform(platform, credentials, timeout=min(self.settings.platform_timeout, 4.0))
        with self._lock:
            self._vtex[platform.name] = ((dict(platform.settings), seen[1]), vtex)
            if known is not None:  # a robot or hook may still be using it: closed at the end
                self._retired.append(known[1])
        return vtex

    def configuration_problem(self, platform: Platform) -> str | None:
        """Why the platform's stored settings or credentials cannot be used, or None."""
        try:
            self._check_settings(platform)
        except Unavailable as error:
            return error.detail
        return self.credentials.problem(platform)

    @staticmethod
    def _check_settings(platform: Platform) -> None:
        # Settings are checked at PUT; these may have been stored before they were.
        try:
            check_base_url(
                platform.settings.get("base_url"),
                allow_insecure_http=bool(platform.settings.get("allow_insecure_http")),
            )
        except InvalidInput as error:
            raise Unavailable(
                f"platform {platform.name}: {error.detail}; correct it with PUT "
                f"/platforms/{platform.name}",
                platform=platform.name,
            ) from None

    def start_background(self) -> None:
        self.reporter = StatusReporter(self.status, lambda: [r.state() for r in self.runners])
        for runner in self.runners:
            runner.on_change = self.reporter.changed
            runner.start()
        if self.waker is not None:
            self.waker.start()
        self.reporter.start()
        names = self.publisher.platform_names
        self.dispatcher = Dispatcher(
            self.deliveries,
            names,
            self.orders.platform,
            self.publisher.desired,
            self.order_list.changed,
            self.orders.get,
            self.adapter_for,
            DispatchConfig(
                backoff_base=self.settings.dispatch_backoff_base,
                backoff_cap=self.settings.dispatch_backoff_cap,
                # Longer than a request can take, so a claim outlives its send; a killed
                # dispatcher's claims are free again after this.
                lease=2 * self.settings.platform_timeout + 5,
                timeout=self.settings.platform_timeout,
            ),
        )
        self.jobs = PlatformJobs(
            self.deliveries, self.orders, names, self.order_list.open_orders, self.vtex
        )
        self.dispatcher.start()
        self.jobs.start()
        self.started = True

    async def check_position(self, position: int) -> None:
        """Refuse a position beyond the event store's head (``UnknownPosition``): no write
        returned it."""
        head = await run_in_threadpool(self.app.recorder.max_notification_id) or 0
        if position > head:
            raise UnknownPosition(
                f"position {position} is beyond the newest stored event ({head}): pass a "
                "position that a write returned",
                field="after",
                head=head,
            )

    async def wait_for(self, view: str, position: int) -> None:
        """Return once ``view`` includes ``position`` (a write's). A position beyond the event
        store's head is refused at once (``UnknownPosition``); one the view does not reach in
        ``read_wait_seconds`` is ``ViewLagging``. The wait sleeps on the event loop: each look
        at the view borrows a worker thread for one indexed query, so a thousand waiting
        clients do not fill the thread pool."""
        # The view's position is read from the database, so a process that runs no runner
        # (an API worker of `serve --workers N`) waits as well as one that does; a local
        # runner is only poked, for SQLite's polling runner to look at once.
        read = self.views[view].position
        runner = next((r for r in self.runners if r.name == view), None) if self.started else None
        if await run_in_threadpool(read) >= position:
            return
        await self.check_position(position)
        timeout = self.settings.read_wait_seconds
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            if runner is not None:
                runner.poke()
            await asyncio.sleep(min(delay, max(deadline - time.monotonic(), 0)))
            if await run_in_threadpool(read) >= position:
                return
            if time.monotonic() >= deadline:
                raise ViewLagging(
                    f"the {view} view did not reach position {position} within {timeout:g} s; "
                    "retry",
                    position=position,
                    view=view,
                )
            delay = min(delay * 2, 0.05)

    def view_health(self) -> tuple[int, list[dict[str, Any]]]:
        """The event store's position and each view's position, lag and state. A process
        that runs the views tells what its runners know; any other reads what the processes
        running them recorded (``view_status``): ``running`` is then whether one of them was
        seen within ``SEEN_WITHIN`` seconds."""
        head = self.app.recorder.max_notification_id() or 0
        views = []
        for state in self._view_states():
            position = self.views[state.name].position()
            views.append(
                {
                    "name": state.name,
                    "position": position,
                    "lag": max(head - position, 0),
                    "running": state.running,
                    "failing": state.failing,
                    "last_error": state.last_error,
                    "problem": state.problem,
                    "heartbeat_age": state.heartbeat_age,
                }
            )
        return head, views

    def _view_states(self) -> list[ReportedView]:
        if self.started:
            return [
                ReportedView(s.name, True, s.failing, s.last_error, s.problem, None)
                for s in (runner.state() for runner in self.runners)
            ]
        reported = self.status.read(list(self.views))
        return [reported[name] for name in self.views]

    def readiness(self) -> list[dict[str, str]]:
        """What keeps this process from serving well, in words that reveal neither the
        database's address nor any data: empty when ready. Unready when a view fails or,
        in a process that runs no views, when no process running them has been seen within
        ``SEEN_WITHIN`` seconds (the background work is down)."""
        try:
            self.app.recorder.max_notification_id()
            states = self._view_states()
            for name in self.views:  # each reads its position: the view's tables answer
                self.views[name].position()
        except Exception:
            return [{"component": "database", "problem": "unreachable"}]
        problems = []
        if not any(state.running for state in states):
            return [
                {
                    "component": "background",
                    "problem": f"no process running the views seen for {SEEN_WITHIN:g} s",
                }
            ]
        for state in states:
            if not state.running:
                problems.append({"component": f"view {state.name}", "problem": "not running"})
            elif state.failing:
                problems.append(
                    {"component": f"view {state.name}", "problem": state.problem or "failing"}
                )
        return problems

    def catch_up(self) -> None:
        """Bring every view up to date now, in this thread (tests, CLI), when the runners
        are not running: they share the view objects, which are not for two threads."""
        if self.started:
            raise RuntimeError("the runners are running: wait for them instead")
        for name, view in self.views.items():
            catch_up(self.app, VIEWS[name].projection(view))

    def close(self) -> None:
        for service in (self.jobs, self.dispatcher):
            if service is not None:
                service.stop()
        if self.waker is not None:
            self.waker.stop()
        for runner in self.runners:
            runner.stop()
        if self.reporter is not None:
            self.reporter.stop()  # its rows go: this process no longer runs the views
        for vtex in [v for _, v in self._vtex.values()] + self._retired:
            vtex.close()
        self.app.close()


def build(settings: Settings) -> Container:
    database = parse_database_url(settings.database_url)
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    keys = load_keys(secret, database)  # before anything starts: a malformed key stops here
    migrate(database)
    app = LedgerApplication(
        env=database.env, allow_negative=settings.allows_negative, loader_factory=loader_for
    )
    # The views read and (on SQLite) write through the application's own connections.
    datastore = app.factory.datastore  # type: ignore[attr-defined]
    views = {name: build_view(kind, datastore) for name, kind in VIEWS.items()}
    runners: list[PollingRunner] = []
    for name, kind in VIEWS.items():
        # On PostgreSQL a NOTIFY wakes the runner and the poll only covers a lost one; on
        # SQLite the poll is how writes of other processes are seen.
        runner = PollingRunner(
            app, kind.projection(views[name]), poll_interval=1.0 if database.is_postgres else 0.1
        )
        app.after_write.append(runner.poke)
        runners.append(runner)
    waker = None
    if database.is_postgres:
        pool = datastore.pool
        waker = NotifyWaker(
            lambda: psycopg.connect(pool.conninfo, **{**pool.kwargs, "autocommit": True}),
            app.recorder.channel_name,  # type: ignore[attr-defined]
            [runner.poke for runner in runners],
        )
    deliveries = DeliveryStore(datastore, database.is_postgres)
    credentials = CredentialStore(datastore, database.is_postgres, keys)
    credentials.rekey()
    return Container(
        settings,
        database,
        app,
        OrderDesk(app, credentials),
        views,
        deliveries,
        credentials,
        ViewStatusStore(datastore, database.is_postgres),
        list(runners),
        waker,
    )
