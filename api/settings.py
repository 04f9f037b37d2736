"""Configuration from ``LEDGER_*`` environment variables and an optional ``.env`` file."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEDGER_", env_file=".env", extra="ignore")

    database_url: str = Field(
        "sqlite:///ledger.db",
        description="sqlite:///path.db (default, in the working folder) or postgresql://...",
    )
    admin_token: SecretStr | None = Field(
        None, description="Bearer token with every permission: the bootstrap credential."
    )
    negative_stock_warehouses: str = Field(
        "",
        description="Warehouses (comma-separated) allowed below zero physical stock; * for all.",
    )
    max_batch: int = Field(50_000, ge=1, description="Most movements in one batch request.")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="Largest single-request body.")
    max_batch_body_bytes: int = Field(32 * 1024 * 1024, ge=1024, description="Largest batch body.")
    read_wait_seconds: float = Field(
        5.0, gt=0, description="How long a read with ?after= waits for the views."
    )
    background: bool = Field(True, description="Run projections inside `ledger serve`.")

    def allows_negative(self, warehouse: str) -> bool:
        allowed = {w.strip() for w in self.negative_stock_warehouses.split(",") if w.strip()}
        return "*" in allowed or warehouse in allowed
