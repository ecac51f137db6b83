"""``voxbox``: serve, admin, and the client commands (login, chats, send, listen ...)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.filesize import decimal
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from voxbox.cli import client_commands, keeping_commands, search_commands
from voxbox.config import Settings, load_settings

T = TypeVar("T")

app = typer.Typer(
    help="voxbox, self-hosted voice messaging: server commands and a client for scripts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Markdown: a paragraph's lines are joined and re-wrapped to the terminal (the rich mode
    # keeps the docstrings' line breaks); so no <placeholders> in help texts: they are tags.
    rich_markup_mode="markdown",
)


def _version(shown: bool) -> None:
    if shown:
        from voxbox import __version__

        typer.echo(f"voxbox {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """voxbox, self-hosted voice messaging: server commands and a client for scripts."""


admin = typer.Typer(
    help="Server administration (runs against the server's database directly).",
    no_args_is_help=True,
)
app.add_typer(admin, name="admin")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="TOML settings file; VOXBOX_* environment variables win over it.",
        exists=True,
        dir_okay=False,
    ),
]


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except Exception as exc:
        typer.secho(f"Error: invalid settings: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc


def _server_data(config: Path | None) -> Settings:
    """The settings of an admin command, which works on an existing server's data: it says
    which, and refuses to start a new empty database (a command run from the wrong directory)."""
    settings = _settings(config)
    where = "SQLite" if settings.is_sqlite else "PostgreSQL"
    typer.secho(f"Server data: {settings.data_dir} ({where})", err=True, dim=True)
    if settings.is_sqlite and not settings.sqlite_path.exists():
        typer.secho(
            f"Error: no voxbox database at {settings.sqlite_path}. Run this where the server "
            "runs, or set VOXBOX_DATA_DIR (or --config) to its data directory.",
            fg="red",
            err=True,
        )
        raise typer.Exit(1)
    return settings


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8080,
    no_jobs: Annotated[
        bool,
        typer.Option(
            "--no-jobs",
            help="Serve HTTP only; leave background jobs to `voxbox worker` (PostgreSQL only).",
        ),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Run the voxbox server (HTTP API, WebSocket events) and, unless --no-jobs, background
    jobs."""
    import uvicorn

    from voxbox.app import create_app
    from voxbox.http_protocol import bounded_http_protocol

    settings = _settings(config)
    if no_jobs and settings.is_sqlite:
        _fail("--no-jobs needs PostgreSQL: with SQLite, jobs run inside `voxbox serve`.")
    _configure_logging(settings.log_level)
    logging.getLogger("voxbox").info(
        "voxbox on http://%s:%d, data in %s, database %s%s",
        host,
        port,
        settings.data_dir,
        "SQLite" if settings.is_sqlite else "PostgreSQL",
        ", no jobs" if no_jobs else "",
    )
    uvicorn.run(
        create_app(settings, base_url=f"http://{host}:{port}", run_jobs=not no_jobs),
        host=host,
        port=port,
        http=bounded_http_protocol(settings.limits.max_header_bytes, settings.limits.max_headers),
        access_log=False,
        log_config=None,
        proxy_headers=settings.trust_forwarded_for,
    )


@app.command()
def worker(config: ConfigOption = None) -> None:
    """Run background jobs only (transcodes, clean-up, scheduled backups), for a deployment on
    PostgreSQL; run as many as you like, on any machine that reaches the database and storage."""
    from voxbox.core.backends import Backends
    from voxbox.core.workers import register_jobs, schedule_local_chores

    settings = _settings(config)
    if settings.is_sqlite:
        _fail("`voxbox worker` needs PostgreSQL: with SQLite, jobs run inside `voxbox serve`.")
    _configure_logging(settings.log_level)
    log = logging.getLogger("voxbox")

    async def run() -> None:
        b = Backends.from_settings(settings)
        register_jobs(b)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await b.start(run_jobs=True)
        schedule_local_chores(b)
        log.info("voxbox worker running jobs (pid %d); Ctrl-C stops it", os.getpid())
        try:
            await stop.wait()
            log.info("stopping: running jobs get %.0f s to end", settings.jobs.shutdown_seconds)
        finally:
            await b.close()

    asyncio.run(run())


def _fail(message: str) -> NoReturn:
    typer.secho(f"Error: {message}", fg="red", err=True)
    raise typer.Exit(2)


@admin.command("create-user")
def create_user(
    handle: Annotated[str, typer.Argument(help="The new user's handle (3-32 of a-z 0-9 _ .).")],
    is_admin: Annotated[
        bool, typer.Option("--admin", help="Make the user a server admin.")
    ] = False,
    password_file: Annotated[
        Path | None,
        typer.Option(
            help="Read the password from this file (first line); prompts otherwise.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    display_name: Annotated[str | None, typer.Option(help="Name shown to others.")] = None,
    config: ConfigOption = None,
) -> None:
    """Create a user directly in the server's database, whatever the registration mode."""
    from voxbox.core import accounts
    from voxbox.core.backends import Backends
    from voxbox.core.errors import VoxboxError

    if password_file is not None:
        password = password_file.read_text().splitlines()[0] if password_file.read_text() else ""
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    settings = _server_data(config)

    async def run() -> str:
        b = Backends.from_settings(settings)
        await b.start()
        try:
            user = await accounts.create_user(b, handle, password, display_name, is_admin)
            return user.handle
        finally:
            await b.close()

    try:
        created = asyncio.run(run())
    except VoxboxError as exc:
        typer.secho(f"Error: {exc.detail}", fg="red", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"Created {'admin ' if is_admin else ''}user {created}.")


@admin.command("usage")
def usage(config: ConfigOption = None) -> None:
    """Show each user's storage (media, drafts, open uploads) against the quota, largest first."""
    from rich.console import Console
    from rich.table import Table

    from voxbox.core.backends import Backends
    from voxbox.core.usage import usage_by_user

    settings = _server_data(config)

    async def run() -> list[Any]:
        b = Backends.from_settings(settings)
        await b.start()
        try:
            return await usage_by_user(b)
        finally:
            await b.close()

    rows = asyncio.run(run())
    quota = settings.limits.storage_quota_bytes
    table = Table("User", "Used", "Media", "Drafts", "Open uploads", "Of quota")
    for handle, used in rows:
        table.add_row(
            handle,
            decimal(used.used_bytes),
            decimal(used.media_bytes),
            decimal(used.draft_bytes),
            f"{used.open_uploads} of {settings.limits.open_uploads_max}",
            f"{used.used_bytes / quota:.0%}" if quota else "no quota",
        )
    Console().print(table)
    typer.echo(f"Quota per user: {decimal(quota) if quota else 'none'}; {len(rows)} users.")


@admin.command("jobs")
def jobs(
    limit: Annotated[int, typer.Option(help="Show at most this many jobs.", min=1)] = 50,
    config: ConfigOption = None,
) -> None:
    """List background jobs that are queued, running, failed or were retried (PostgreSQL)."""
    from rich.console import Console
    from rich.table import Table

    from voxbox.core.backends import Backends
    from voxbox.jobs.postgres import PostgresJobs

    settings = _server_data(config)
    if settings.is_sqlite:
        typer.echo(
            "With SQLite, jobs run inside `voxbox serve` and are not kept in the database: "
            "there is nothing to list from outside it."
        )
        return

    async def run() -> tuple[dict[str, int], list[Any]]:
        b = Backends.from_settings(settings)
        await b.start()
        try:
            assert isinstance(b.jobs, PostgresJobs)
            return await b.jobs.list_jobs(limit)
        finally:
            await b.close()

    counts, rows = asyncio.run(run())
    table = Table("Id", "Job", "State", "Runs", "Arguments", "Last change (UTC)")
    for row in rows:
        args = ", ".join(f"{k}={v}" for k, v in row.args.items() if k != "keys")
        table.add_row(
            str(row.id),
            row.task,
            row.state,
            str(row.attempts + (row.state == "doing")),
            args,
            f"{row.updated_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}" if row.updated_at else "",
        )
    Console(width=120).print(table)
    typer.echo(
        "Jobs: "
        + ", ".join(f"{counts.get(state, 0)} {label}" for state, label in _JOB_STATES.items())
    )


_JOB_STATES = {  # procrastinate's states, in the order the summary line gives them
    "todo": "queued",
    "doing": "running",
    "succeeded": "done",
    "failed": "failed",
    "aborted": "aborted",
    "cancelled": "cancelled",
}


@admin.command("backup-key")
def backup_key(
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Where to write the secret key (created 0600)."),
    ] = Path("voxbox-backup-key.txt"),
) -> None:
    """Make a key pair for server backups: write the secret key, print the public key.

    Back up to the public key (age1...): --recipient, or VOXBOX_BACKUP__RECIPIENT.

    Keep the secret key off the server: only it restores ('voxbox admin restore --identity').
    """
    from voxbox import age

    identity = age.X25519Identity.generate()
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        typer.secho(f"Error: {output} exists; a key is never overwritten.", fg="red", err=True)
        raise typer.Exit(1) from None
    with os.fdopen(fd, "w") as f:
        f.write(f"# voxbox server backup key\n# public key: {identity.recipient}\n{identity}\n")
    typer.echo(str(identity.recipient))


@admin.command("backup")
def backup_server(
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="A directory, or s3://bucket/prefix[?endpoint=URL]. Default: the backup.to "
            "setting.",
            show_default=False,
        ),
    ] = None,
    recipient: Annotated[
        str | None,
        typer.Option(
            "--recipient",
            help="The age public key (age1...) to encrypt to. Default: the backup.recipient "
            "setting.",
            show_default=False,
        ),
    ] = None,
    keep: Annotated[
        int | None,
        typer.Option(
            "--keep", min=1, help="Snapshots to keep. Default: backup.keep (7).", show_default=False
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Back up the server while it runs: its database and media, encrypted.

    Media already at the destination is not sent again.

    Snapshots beyond --keep are deleted, with the media only they used.
    """
    from voxbox import age
    from voxbox.core import server_backup
    from voxbox.storage import make_blob_store

    settings = _server_data(config)
    to = to or settings.backup.to
    recipient = recipient or settings.backup.recipient
    if not to or not recipient:
        typer.secho(
            "Error: say where to (--to or VOXBOX_BACKUP__TO) and to whom (--recipient or "
            "VOXBOX_BACKUP__RECIPIENT; 'voxbox admin backup-key' makes a key).",
            fg="red",
            err=True,
        )
        raise typer.Exit(2)
    try:
        key = age.X25519Recipient.parse(recipient)
    except age.AgeError as exc:
        typer.secho(f"Error: --recipient: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc

    async def run() -> server_backup.Snapshot:
        store = make_blob_store(settings.storage_url, settings.data_dir)
        dest = server_backup.destination(to)
        try:
            with _blob_bar("Backing up media") as progress:
                return await server_backup.back_up(
                    settings, store, dest, key, keep=keep or settings.backup.keep,
                    on_progress=progress,
                )  # fmt: skip
        finally:
            await dest.close()
            await store.close()

    done = _run_backup(run)
    typer.echo(
        f"Snapshot {done.name}: {done.blobs} media files, {done.blobs_sent} new "
        f"({decimal(done.bytes_sent)}), in {done.seconds:.1f} s."
    )
    if done.missing:
        typer.echo(f"{len(done.missing)} media files were deleted while it ran (not needed).")
    if done.deleted_snapshots:
        typer.echo(f"Deleted older snapshots: {', '.join(done.deleted_snapshots)}.")


@admin.command("restore")
def restore_server(
    source: Annotated[
        str, typer.Option("--from", help="The backup destination: a directory or s3://...")
    ],
    identity: Annotated[
        Path,
        typer.Option(
            "--identity", help="The secret key file (from 'voxbox admin backup-key').", exists=True
        ),
    ],
    snapshot: Annotated[
        str | None,
        typer.Option(
            help="Which snapshot (see catalog.json). Default: the newest.", show_default=False
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Rebuild this server from a backup: its database and its media.

    Stop the server first; the database must be empty (a new data directory, or a new
    PostgreSQL database).

    Clients that saw more than the snapshot holds are told to reload when they reconnect.
    """
    from voxbox import age
    from voxbox.core import server_backup

    settings = _settings(config)
    try:
        key = age.X25519Identity.parse(identity.read_text())
    except age.AgeError as exc:
        typer.secho(f"Error: --identity: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc

    async def run() -> server_backup.Restored:
        src = server_backup.destination(source)
        try:
            with _blob_bar("Restoring media") as progress:
                return await server_backup.restore(
                    settings, src, key, snapshot=snapshot, on_progress=progress
                )
        finally:
            await src.close()

    done = _run_backup(run)
    typer.echo(
        f"Restored snapshot {done.snapshot}: the {done.database} database and {done.blobs} "
        "media files. Start the server with 'voxbox serve'."
    )


def _run_backup(run: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a backup or restore; its refusal is an error line and exit code 1."""
    from voxbox.core.server_backup import BackupError

    try:
        return asyncio.run(run())
    except BackupError as exc:
        typer.secho(f"Error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from exc


@contextlib.contextmanager
def _blob_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A bar of media files done, on a terminal; silent otherwise (a summary line follows)."""
    if not sys.stderr.isatty():
        yield lambda done, total: None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


client_commands.register(app)
search_commands.register(app)
keeping_commands.register(app)


def main() -> None:
    app()
