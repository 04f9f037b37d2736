"""The one place where the application, its views and their runners are built and closed."""

from __future__ import annotations

from dataclasses import dataclass, field

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment

from adapters.bulk_loading import loader_for
from adapters.database import Database, parse_database_url
from adapters.migrations import migrate
from api.settings import Settings
from ledger.application import LedgerApplication
from ledger.ordering import OrderDesk
from projections.runner import ViewRunner
from projections.stock_levels import (
    PostgresStockLevelsView,
    SQLiteStockLevelsView,
    StockLevelsProjection,
    StockLevelsView,
)


@dataclass
class Container:
    settings: Settings
    database: Database
    app: LedgerApplication
    stock_levels: StockLevelsView
    orders: OrderDesk
    runners: list[ViewRunner] = field(default_factory=list)
    started: bool = False

    def start_background(self) -> None:
        for runner in self.runners:
            runner.start()
        self.started = True

    def close(self) -> None:
        for runner in self.runners:
            runner.stop()
        self.stock_levels.datastore.close()
        self.app.close()


def build(settings: Settings) -> Container:
    database = parse_database_url(settings.database_url)
    migrate(database)
    app = LedgerApplication(
        env=database.env, allow_negative=settings.allows_negative, loader_factory=loader_for
    )
    view_class = PostgresStockLevelsView if database.is_postgres else SQLiteStockLevelsView
    factory = InfrastructureFactory.construct(Environment(StockLevelsProjection.name, database.env))
    stock_levels = factory.tracking_recorder(view_class)
    runner = ViewRunner(app, StockLevelsProjection(stock_levels))
    app.after_write.append(runner.poke)
    return Container(settings, database, app, stock_levels, OrderDesk(app), [runner])
