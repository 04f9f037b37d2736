"""The ``ledger`` command: serve, worker, migrate and token administration."""

from __future__ import annotations

import gc
import signal
import threading
from typing import Annotated

import typer
import uvicorn

from api.settings import Settings
from api.wiring import build
from ledger.codes import check_code
from ledger.errors import LedgerError
from ledger.tokens import Permission

cli = typer.Typer(help="An event-sourced stock ledger.", no_args_is_help=True, add_completion=False)
tokens = typer.Typer(help="Issue, list and revoke API tokens.", no_args_is_help=True)
cli.add_typer(tokens, name="token")


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    background: Annotated[
        bool, typer.Option(help="Also run the background work (projections) in this process.")
    ] = True,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the HTTP API (and, unless --no-background, the background work)."""
    from api.app import create_app

    settings = Settings()
    app = create_app(settings, background=background)
    _tune_garbage_collector()
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def _tune_garbage_collector() -> None:
    # A 50,000-row batch allocates millions of short-lived objects; with the default threshold
    # (700) the collector runs thousands of times and rescans the whole heap in its older
    # generations. Measured: about 12% of a large batch's time (docs/benchmarks.md).
    gc.freeze()
    gc.set_threshold(10_000, 50, 100)


@cli.command()
def worker() -> None:
    """Run only the background work, for deployments with several API processes."""
    container = build(Settings())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    container.start_background()
    typer.echo(f"worker running on {container.database.backend}; Ctrl-C to stop")
    stop.wait()
    container.close()


@cli.command()
def migrate() -> None:
    """Create or update the read-model tables (also done at every start)."""
    from adapters.database import parse_database_url
    from adapters.migrations import migrate as apply

    applied = apply(parse_database_url(Settings().database_url))
    typer.echo(f"applied {applied} migration(s)")


@tokens.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="Unique name, recorded as recorded_by.")],
    permission: Annotated[
        list[Permission],
        typer.Option("--permission", "-p", help="read, write or admin; repeatable."),
    ],
) -> None:
    """Issue a token and print its secret (shown only this once)."""
    container = build(Settings())
    try:
        secret = container.app.issue_token(check_code(name, "name"), permission, issued_by="cli")
    except LedgerError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(1) from None
    finally:
        container.close()
    typer.echo(secret)


@tokens.command("revoke")
def token_revoke(name: str) -> None:
    """Revoke a token: it stops working at once."""
    container = build(Settings())
    try:
        container.app.revoke_token(name, revoked_by="cli")
    except LedgerError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(1) from None
    finally:
        container.close()
    typer.echo(f"revoked {name}")


@tokens.command("list")
def token_list() -> None:
    """List tokens with their permissions and state."""
    container = build(Settings())
    try:
        for t in container.app.list_tokens():
            state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "active"
            typer.echo(f"{t.name}\t{','.join(t.permissions)}\t{state}")
    finally:
        container.close()


def main() -> None:
    cli()
