"""Configuration from ``LEDGER_*`` environment variables and an optional ``.env`` file."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.secret_keys import parse_keys


class Settings(BaseSettings):
    # Unknown LEDGER_* keys are ignored, so settings that were removed (such as
    # LEDGER_DISPATCH_MAX_ATTEMPTS: retryable failures are never given up now) still start.
    # hide_input_in_errors: a refused setting may be a secret (a token, a key).
    model_config = SettingsConfigDict(
        env_prefix="LEDGER_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

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
    background: bool = Field(
        True, description="Run the background work (projections, dispatcher) in `ledger serve`."
    )
    workers: int | None = Field(
        None,
        ge=1,
        description="API processes of `ledger serve`. Unset: the CPU count on PostgreSQL, 1 on "
        "SQLite (one writer at a time; more is refused there).",
    )
    dispatch_backoff_base: float = Field(
        0.5, gt=0, description="First retry delay (s); it doubles with each failure."
    )
    dispatch_backoff_cap: float = Field(
        60.0,
        gt=0,
        description="Longest retry delay (s), and the longest wait between two probes of a "
        "failing platform.",
    )
    platform_timeout: float = Field(10.0, gt=0, description="Timeout of one platform request (s).")
    secret_key: SecretStr | None = Field(
        None,
        description="Fernet key(s) that encrypt platform credentials, comma-separated: the first "
        "encrypts, all decrypt (rotation). Unset: on SQLite a key file is created beside the "
        "database; on PostgreSQL credentials cannot be stored.",
    )
    session_idle_minutes: float = Field(
        60.0,
        gt=0,
        le=7 * 24 * 60,
        description="A console session ends after this many minutes without a request.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", description="Least severe level logged, for every logger."
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="text: time level logger message; json: one JSON object per line."
    )

    @field_validator("secret_key")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        # Refused with the others at start (the message never holds the key).
        if value is not None and value.get_secret_value().strip():
            parse_keys(value.get_secret_value(), "LEDGER_SECRET_KEY")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_any_case(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    def allows_negative(self, warehouse: str) -> bool:
        allowed = {w.strip() for w in self.negative_stock_warehouses.split(",") if w.strip()}
        return "*" in allowed or warehouse in allowed
