"""``voxbox``: serve, admin, and the client commands (login, chats, send, listen ...)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer

from voxbox.cli import client_commands, keeping_commands
from voxbox.config import Settings, load_settings

app = typer.Typer(
    help="voxbox, self-hosted voice messaging: server commands and a client for scripts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
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


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    config: ConfigOption = None,
) -> None:
    """Run the voxbox server (HTTP API, WebSocket events)."""
    import uvicorn

    from voxbox.app import create_app

    settings = _settings(config)
    _configure_logging(settings.log_level)
    logging.getLogger("voxbox").info(
        "voxbox on http://%s:%d, data in %s, database %s",
        host,
        port,
        settings.data_dir,
        "SQLite" if settings.is_sqlite else "PostgreSQL",
    )
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        access_log=False,
        log_config=None,
        proxy_headers=settings.trust_forwarded_for,
    )


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
    settings = _settings(config)

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


client_commands.register(app)
keeping_commands.register(app)


def main() -> None:
    app()
