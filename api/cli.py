"""The ``ledger`` command: serve, worker, migrate, rebuild, verify, demo and tokens."""

from __future__ import annotations

import gc
import os
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console
from rich.progress import ProgressColumn, Task
from rich.text import Text

from api.logs import configure_logging
from api.settings import Settings
from api.wiring import build
from ledger.codes import check_code
from ledger.errors import LedgerError
from ledger.tokens import Permission

cli = typer.Typer(help="An event-sourced stock ledger.", no_args_is_help=True, add_completion=False)
tokens = typer.Typer(help="Issue, list and revoke API tokens.", no_args_is_help=True)
cli.add_typer(tokens, name="token")
users = typer.Typer(help="Create, list and disable the console's users.", no_args_is_help=True)
cli.add_typer(users, name="user")


def _settings() -> Settings:
    """The settings, or a clear refusal naming what is wrong (never a traceback)."""
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"LEDGER_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in error.errors()
        )
        typer.echo(f"error: invalid configuration: {problems}", err=True)
        raise typer.Exit(2) from None


# They use no setting of the ledger's: a broken setting must not stop them, least of all
# `secret-key`, which prints the value that mends a broken LEDGER_SECRET_KEY.
_SELF_CONTAINED = {"secret-key", "demo"}


@cli.callback()
def _every_command(ctx: typer.Context) -> None:
    """An event-sourced stock ledger."""
    if ctx.invoked_subcommand in _SELF_CONTAINED:
        try:
            settings = Settings()
        except ValidationError:
            settings = Settings.model_construct()  # every default, logging's included
    else:
        settings = _settings()
    configure_logging(settings.log_level, settings.log_format)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="API processes (default: LEDGER_WORKERS, else the CPU count on PostgreSQL and "
            "1 on SQLite). With more than one, the background work runs in a process of its "
            "own, restarted if it dies. SQLite allows only 1 (one writer at a time).",
            show_default=False,
        ),
    ] = None,
    background: Annotated[
        bool | None,
        typer.Option(
            help="Also run the background work (views, dispatcher, platform robots): in this "
            "process with --workers 1, else in a supervised process of its own "
            "(default: LEDGER_BACKGROUND, true).",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the HTTP API (and, unless --no-background, the background work)."""
    from adapters.database import parse_database_url
    from api.processes import default_workers

    settings = _settings()
    try:
        database = parse_database_url(settings.database_url)
    except ValueError as error:
        typer.echo(f"error: LEDGER_DATABASE_URL: {error}", err=True)
        raise typer.Exit(2) from None
    count = workers or settings.workers or default_workers(database)
    if count > 1 and not database.is_postgres:
        typer.echo(
            f"error: {count} workers on SQLite: SQLite has one writer at a time and feeds its "
            "views from the writing process, so `ledger serve` runs one process on it "
            "(--workers 1, the default there); use PostgreSQL for more",
            err=True,
        )
        raise typer.Exit(2)
    run_background = settings.background if background is None else background
    if count > 1:
        from api.processes import serve_many

        code = serve_many(
            settings,
            host=host,
            port=port,
            workers=count,
            background=run_background,
            log_level=log_level,
        )
        raise typer.Exit(code)
    from api.app import create_app

    app = create_app(settings, background=run_background)
    tune_garbage_collector()
    # No logging configuration of uvicorn's own: its lines take ours (api/logs.py).
    uvicorn.run(app, host=host, port=port, log_level=log_level, log_config=None)


def tune_garbage_collector() -> None:
    # A 50,000-row batch allocates millions of short-lived objects; with the default threshold
    # (700) the collector runs thousands of times and rescans the whole heap in its older
    # generations. Measured: about 12% of a large batch's time (docs/benchmarks.md).
    gc.freeze()
    gc.set_threshold(10_000, 50, 100)


@cli.command()
def worker(
    parent: Annotated[
        int | None,
        typer.Option(
            hidden=True, help="The pid of the `serve` supervising this process: stop with it."
        ),
    ] = None,
) -> None:
    """Run only the background work, for deployments with several API processes."""
    from api import process_metrics
    from api.processes import die_with_parent

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    die_with_parent(parent)
    container = build(_settings())
    process_metrics.register("background")
    container.start_background()
    typer.echo(f"worker running on {container.database.backend}; Ctrl-C to stop")
    stop.wait()
    container.close()
    process_metrics.forget(os.getpid())


@cli.command("secret-key")
def secret_key() -> None:
    """Print a new key for LEDGER_SECRET_KEY, which encrypts platform credentials."""
    from adapters.secret_keys import generate_key

    typer.echo(generate_key())


@cli.command()
def demo(
    wait: Annotated[
        float, typer.Option(help="Longest wait for each step's expectation, in seconds.")
    ] = 60.0,
) -> None:
    """Play the seed's worked example end to end: a temporary ledger and a local VTEX store
    emulator, no network, no account. Exits 0 only when every step held."""
    from api.demo import run

    raise typer.Exit(run(Console(soft_wrap=True), wait))


@cli.command()
def migrate() -> None:
    """Create or update the read-model tables (also done at every start)."""
    from adapters.database import parse_database_url
    from adapters.migrations import migrate as apply

    applied = apply(parse_database_url(_settings().database_url))
    typer.echo(f"applied {applied} migration(s)")


def _view_kinds(names: list[str] | None) -> list[Any]:
    from projections.catalog import VIEWS

    unknown = [n for n in names or [] if n not in VIEWS]
    if unknown:
        typer.echo(
            f"error: no view named {', '.join(unknown)}; views: {', '.join(VIEWS)}", err=True
        )
        raise typer.Exit(2)
    return [VIEWS[n] for n in names] if names else list(VIEWS.values())


@cli.command()
def rebuild(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Views to rebuild (default: all): stock_levels, movement_report, order_list, "
            "publisher, products."
        ),
    ] = None,
    restart: Annotated[
        bool, typer.Option(help="Discard an interrupted rebuild instead of resuming it.")
    ] = False,
) -> None:
    """Rebuild views from the event store while the API keeps serving the old ones."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from projections.rebuild import rebuild as run_rebuild

    kinds = _view_kinds(names)
    container = build(_settings())
    columns = (
        TextColumn("[bold]rebuilding[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f} events"),
        _EventsPerSecond(),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, console=Console(stderr=True)) as bar:
            task = bar.add_task(", ".join(k.name for k in kinds), total=1)
            results = run_rebuild(
                container.app,
                kinds,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                restart=restart,
            )
    finally:
        container.close()
    for result in results:
        resumed = f" (resumed from {result.resumed_from})" if result.resumed_from else ""
        typer.echo(f"{result.name}: rebuilt up to position {result.position}{resumed}")


class _EventsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} events/s")


@cli.command()
def verify(
    names: Annotated[
        list[str] | None, typer.Argument(help="Views to check (default: all).")
    ] = None,
) -> None:
    """Replay every event and compare every view row; exit 1 on any difference."""
    from projections.verify import verify as run_verify

    kinds = _view_kinds(names)
    container = build(_settings())
    differences = 0
    try:
        for kind in kinds:
            verdict = run_verify(
                container.app, container.views[kind.name], lambda d: typer.echo(str(d))
            )
            differences += verdict.count
            state = "ok" if not verdict.count else f"{verdict.count} difference(s)"
            typer.echo(f"{kind.name}: {verdict.rows} rows at position {verdict.position}: {state}")
    finally:
        container.close()
    if differences:
        raise typer.Exit(1)


@cli.command("import")
def import_sheet(
    file: Annotated[Path, typer.Argument(help="A CSV or XLSX stock spreadsheet.")],
    mode: Annotated[
        str, typer.Option(help="add: quantities are changes; set: they are counted levels.")
    ] = "add",
    warehouse: Annotated[str, typer.Option(help="For rows without a warehouse.")] = "main",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Commit without asking.")] = False,
    skip_invalid: Annotated[
        bool, typer.Option(help="Commit the valid rows even when some are in error.")
    ] = False,
) -> None:
    """Preview a spreadsheet, then commit it in one transaction (as POST /imports does)."""
    from rich.progress import BarColumn, Progress, TextColumn

    try:
        data = file.read_bytes()
    except OSError as error:
        typer.echo(f"error: cannot read {file}: {error.strerror}", err=True)
        raise typer.Exit(1) from None
    container = build(_settings())
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,} rows"))
    try:
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("reading", total=None)
            record = container.imports.preview(
                data,
                file.name,
                mode,
                warehouse,
                "cli",
                progress=lambda done: bar.update(task, completed=done),
            )
        summary = record.summary
        typer.echo(
            f"{file.name}: {record.total_rows:,} rows, {record.valid_rows:,} valid, "
            f"{summary['errors_total']:,} in error; {summary['changes_total']:,} stocks change "
            f"(import {record.import_id})"
        )
        for warning in summary["warnings"]:
            typer.echo(f"  warning: {warning}")
        for error in summary["errors"][:20]:
            typer.echo(f"  row {error['row']}, {error['column']}: {error['detail']}")
        if summary["errors_total"] > 20:
            typer.echo(f"  … and {summary['errors_total'] - 20:,} more")
        for change in summary["changes"][:10]:
            typer.echo(
                f"  {change['sku']} in {change['warehouse']}: {change['physical_before']} -> "
                f"{change['physical_after']}"
            )
        if summary["changes_total"] > 10:
            typer.echo(f"  … and {summary['changes_total'] - 10:,} more")
        if summary["errors_total"] and not skip_invalid:
            typer.echo("nothing recorded: fix the file, or pass --skip-invalid", err=True)
            raise typer.Exit(1)
        if not yes and not typer.confirm("commit?"):
            typer.echo("nothing recorded")
            raise typer.Exit(1)
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("committing", total=record.total_rows)
            record, results, already = container.imports.commit(
                record.import_id,
                skip_invalid,
                "cli",
                progress=lambda done: bar.update(task, completed=done),
            )
    except LedgerError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(1) from None
    finally:
        container.close()
    replays = sum(1 for r in results if r.replayed)
    typer.echo(
        f"committed: {len(results) - replays:,} movements recorded, {already + replays:,} "
        f"already recorded before (position {record.position})"
    )


@tokens.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="Unique name, recorded as recorded_by.")],
    permission: Annotated[
        list[Permission],
        typer.Option("--permission", "-p", help="read, write or admin; repeatable."),
    ],
) -> None:
    """Issue a token and print its secret (shown only this once)."""
    container = build(_settings())
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
    container = build(_settings())
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
    container = build(_settings())
    try:
        for t in container.app.list_tokens():
            state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "active"
            typer.echo(f"{t.name}\t{','.join(t.permissions)}\t{state}")
    finally:
        container.close()


@users.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="The name the person signs in with.")],
    role: Annotated[Permission, typer.Option("--role", "-r", help="read, write or admin.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="LEDGER_NEW_USER_PASSWORD",
            help="Asked for when not given (or set LEDGER_NEW_USER_PASSWORD).",
        ),
    ],
) -> None:
    """Create a console user: the first admin comes from here (or POST /users)."""
    container = build(_settings())
    try:
        user = container.people.create(name, password, role.value, created_by="cli")
    except LedgerError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(1) from None
    finally:
        container.close()
    typer.echo(f"created {user.name} ({user.role})")


@users.command("disable")
def user_disable(name: str) -> None:
    """Disable a user: their sessions end at once."""
    container = build(_settings())
    try:
        container.people.disable(name, "cli")
        container.sessions.close_all(name)
    except LedgerError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(1) from None
    finally:
        container.close()
    typer.echo(f"disabled {name}")


@users.command("list")
def user_list() -> None:
    """List users with their roles and state."""
    container = build(_settings())
    try:
        for u in container.people.list():
            state = f"disabled {u.disabled_at:%Y-%m-%d %H:%M}" if u.disabled_at else "active"
            typer.echo(f"{u.name}\t{u.role}\t{state}")
    finally:
        container.close()


def main() -> None:
    cli()
