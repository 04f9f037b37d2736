"""Deterministic aggregate ids: the same business key always names the same aggregate."""

from __future__ import annotations

from functools import lru_cache
from uuid import UUID, uuid5

NAMESPACE = UUID("6f1c1b2e-8d8a-4c55-9a53-0f6e1d4f3b7a")


# A write derives each id several times (lookup, aggregate, result); uuid5 hashes with SHA-1.
@lru_cache(maxsize=65_536)
def stock_id(sku: str, warehouse: str) -> UUID:
    # "\x1f" (unit separator) cannot occur in a checked code, so no two keys collide.
    return uuid5(NAMESPACE, f"stock\x1f{sku}\x1f{warehouse}")


@lru_cache(maxsize=65_536)
def movement_record_id(movement_id: str) -> UUID:
    return uuid5(NAMESPACE, f"movement\x1f{movement_id}")


def token_id(token_hash: str) -> UUID:
    return uuid5(NAMESPACE, f"token\x1f{token_hash}")


def token_name_id(name: str) -> UUID:
    return uuid5(NAMESPACE, f"token-name\x1f{name}")


def order_id(platform: str, external_id: str) -> UUID:
    return uuid5(NAMESPACE, f"order\x1f{platform}\x1f{external_id}")


def platform_id(name: str) -> UUID:
    return uuid5(NAMESPACE, f"platform\x1f{name}")


def product_id(sku: str) -> UUID:
    return uuid5(NAMESPACE, f"product\x1f{sku}")


def barcode_id(key: str) -> UUID:
    return uuid5(NAMESPACE, f"barcode\x1f{key}")


def count_id(count_key: str) -> UUID:
    return uuid5(NAMESPACE, f"count\x1f{count_key}")


def user_id(name: str) -> UUID:
    return uuid5(NAMESPACE, f"user\x1f{name}")
