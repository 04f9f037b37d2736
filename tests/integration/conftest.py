from __future__ import annotations

from collections.abc import Iterator

import pytest

from api.settings import Settings
from api.wiring import Container, build


@pytest.fixture
def make_container(database_url: str) -> Iterator:
    """Build containers on one database; several of them act like several processes."""
    built: list[Container] = []

    def make(**settings: object) -> Container:
        container = build(Settings(database_url=database_url, **settings))
        built.append(container)
        return container

    yield make
    for container in built:
        container.close()


@pytest.fixture
def container(make_container) -> Container:
    return make_container()
