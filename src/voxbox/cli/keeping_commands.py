"""Client commands that keep history: `voxbox backup create|restore` and `voxbox import`."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from voxbox.cli import output as ui
from voxbox.cli.transfer_commands import Transfer
from voxbox.client import keeping

backup = typer.Typer(
    help="Your encrypted backup: everything you have, in one file only your passphrase opens.",
    no_args_is_help=True,
)

PassphraseFile = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help="Read the passphrase from this file's first line (for scripts). Without it you "
        "are asked for it.",
        exists=True,
        dir_okay=False,
        show_default=False,
    ),
]


def _passphrase(file: Path | None, *, confirm: bool) -> str:
    if file is not None:
        lines = file.read_text().splitlines()
        return lines[0] if lines else ""
    return str(typer.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm))


@contextlib.contextmanager
def _following(label: str) -> Iterator[keeping.TaskProgress]:
    """A progress bar of a server task on a terminal; a line a few seconds otherwise."""
    if ui.err.is_terminal:
        columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn())
        with Progress(*columns, TimeElapsedColumn(), console=ui.err) as bar:
            task = bar.add_task(label, total=1.0)
            yield lambda fraction: bar.update(task, completed=fraction)
        return
    shown = [-1.0, 0.0]

    def line(fraction: float) -> None:
        if fraction == 1.0 or (time.monotonic() - shown[1] >= 5 and fraction != shown[0]):
            shown[:] = [fraction, time.monotonic()]
            ui.err.print(f"{label}: {fraction:.0%}")

    yield line


@backup.command("create")
def create_backup(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="The file to write. Default: voxbox-backup-HANDLE-DATE.age here.",
            show_default=False,
        ),
    ] = None,
    passphrase_file: PassphraseFile = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite the file if it exists.")
    ] = False,
) -> None:
    """Back up your chats, messages, receipts, stars and media into one encrypted file.

    It is an age file: 'age -d FILE' opens it too, with the passphrase.

    Without the passphrase nobody can open it, not even you: keep it safe.
    """
    credentials = ui.load_login()
    dest = output or Path(f"voxbox-backup-{credentials.handle}-{date.today()}.age")
    if dest.exists() and not force:
        ui.fail("File exists", f"{dest}; add --force to overwrite it")
    passphrase = _passphrase(passphrase_file, confirm=True)
    with ui.reporting_errors(), ui.client_for(credentials) as client:
        with _following("Backing up") as progress:
            task = keeping.follow(client, "backup", client.create_backup(passphrase), progress)
        with Transfer(f"Downloading {dest.name}") as transfer:
            keeping.download_backup(client, task["id"], dest, transfer)
    ui.out.print(str(dest), markup=False, soft_wrap=True)


@backup.command("restore")
def restore_backup(
    file: Annotated[Path, typer.Argument(help="The backup (.age) to restore.", exists=True)],
    passphrase_file: PassphraseFile = None,
) -> None:
    """Restore a backup into your account, on this server or another.

    Your chats come back with their messages and media; others' messages keep their names.

    Restoring again adds nothing. A wrong passphrase, or a damaged file, changes nothing.
    """
    credentials = ui.load_login()
    passphrase = _passphrase(passphrase_file, confirm=False)
    with ui.reporting_errors(), ui.client_for(credentials) as client:
        with ui.err.status("Uploading") if ui.err.is_terminal else contextlib.nullcontext():
            started = client.restore_backup(file, passphrase)
        with _following("Restoring") as progress:
            task = keeping.follow(client, "restore", started, progress)
    _print_counts("Restored", task)


def _print_counts(verb: str, task: dict[str, Any]) -> None:
    counts = task.get("counts", {})
    ui.out.print(
        f"{verb}: " + ", ".join(f"{what.replace('_', ' ')}: {n}" for what, n in counts.items())
    )


def import_chat(
    file: Annotated[
        Path,
        typer.Argument(
            help="A WhatsApp 'Export chat' zip or .txt, or a Telegram result.json or its zip.",
            exists=True,
        ),
    ],
    timezone: Annotated[
        str,
        typer.Option(
            "--timezone",
            help="The time zone the export's clock times are in (IANA name, e.g. Europe/London).",
        ),
    ] = "UTC",
    mapping: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="NAME=HANDLE: the sender NAME in the export is the user HANDLE here (your own "
            "handle for your own messages). Repeat for several. Others keep their names.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the finished task as JSON.")
    ] = False,
) -> None:
    """Import a chat exported from WhatsApp or Telegram, voice notes and all.

    The chat keeps its messages' original order and times.

    Importing the same file again adds nothing. Lines left out are listed, with their numbers.
    """
    pairs: dict[str, str] = {}
    for item in mapping or []:
        name, sep, handle = item.rpartition("=")
        if not sep or not name.strip() or not handle.strip():
            ui.fail("Bad --map", f"{item!r}; write NAME=HANDLE")
        pairs[name.strip()] = handle.strip().lstrip("@")
    credentials = ui.load_login()
    with ui.reporting_errors(), ui.client_for(credentials) as client:
        with ui.err.status("Uploading") if ui.err.is_terminal else contextlib.nullcontext():
            started = client.import_chat(file, mapping=pairs, timezone=timezone)
        with _following("Importing") as progress:
            task = keeping.follow(client, "import", started, progress)
    if as_json:
        ui.print_json(task)
        return
    _print_counts("Imported", task)
    for skipped in task.get("skipped", []):
        ui.err.print(f"  line {skipped['line']}: {skipped['reason']}", markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(backup, name="backup")
    app.command("import")(import_chat)
