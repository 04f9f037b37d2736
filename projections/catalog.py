"""Every view by name, and how to build one on either backend."""

from __future__ import annotations

from dataclasses import dataclass

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.utils import Environment

from projections.base import View, ViewProjection
from projections.movement_report import (
    MovementReportProjection,
    PostgresMovementReportView,
    SQLiteMovementReportView,
)
from projections.order_list import (
    OrderListProjection,
    PostgresOrderListView,
    SQLiteOrderListView,
)
from projections.products import (
    PostgresProductsView,
    ProductsProjection,
    SQLiteProductsView,
)
from projections.publisher import (
    PostgresPublisherView,
    PublisherProjection,
    SQLitePublisherView,
)
from projections.stock_levels import (
    PostgresStockLevelsView,
    SQLiteStockLevelsView,
    StockLevelsProjection,
)


@dataclass(frozen=True)
class ViewKind:
    projection: type[ViewProjection]
    sqlite: type[View]
    postgres: type[View]

    @property
    def name(self) -> str:
        return self.projection.name

    def view_class(self, postgres: bool) -> type[View]:
        return self.postgres if postgres else self.sqlite


VIEWS: dict[str, ViewKind] = {
    kind.name: kind
    for kind in (
        ViewKind(StockLevelsProjection, SQLiteStockLevelsView, PostgresStockLevelsView),
        ViewKind(MovementReportProjection, SQLiteMovementReportView, PostgresMovementReportView),
        ViewKind(OrderListProjection, SQLiteOrderListView, PostgresOrderListView),
        ViewKind(PublisherProjection, SQLitePublisherView, PostgresPublisherView),
        ViewKind(ProductsProjection, SQLiteProductsView, PostgresProductsView),
    )
}


def open_datastore(env: dict[str, str]) -> PostgresDatastore | SQLiteDatastore:
    """One connection pool for any number of views (each view would otherwise open its own)."""
    factory = InfrastructureFactory.construct(Environment("views", env))
    return factory.datastore  # type: ignore[attr-defined,no-any-return]


def build_view(
    kind: ViewKind, datastore: PostgresDatastore | SQLiteDatastore, *, suffix: str = ""
) -> View:
    """A view over ``datastore``, tracking where ``ProjectionRunner`` does on PostgreSQL (a
    ``<name>_tracking`` table) and in the shared ``tracking`` table on SQLite."""
    if isinstance(datastore, PostgresDatastore):
        view: View = kind.postgres(  # type: ignore[call-arg]
            datastore=datastore, tracking_table_name=f"{kind.name}_tracking"
        )
    else:
        view = kind.sqlite(datastore=datastore)  # type: ignore[call-arg]
    view.suffix = suffix
    view.create_table()  # the tracking table: the view's own tables come from migrations
    return view
