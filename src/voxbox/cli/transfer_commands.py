"""Client commands that move files: `voxbox send CHAT FILE` (resumable tus upload) and
`voxbox download`. A re-run after Ctrl-C or a lost connection continues where it stopped.
"""

from __future__ import annotations

import contextlib
import enum
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Annotated

import httpx
import typer
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from voxbox.cli import output as ui
from voxbox.client import uploads
from voxbox.client.config import (
    Credentials,
    upload_key,
)
from voxbox.client.http import MediaFormat, MessageKind
from voxbox.client.resolve import resolve_chat
from voxbox.client.sync import sync
from voxbox.client.uploads import download_name, part_paths, safe_filename

INTERRUPTED = "Interrupted; run the same command again to continue."


@contextlib.contextmanager
def _resumable() -> Iterator[None]:
    """For a transfer that a re-run continues: Ctrl-C inside the block ends the command with
    exit code 130, a lost connection with exit code 1, both with a hint to run it again."""
    try:
        yield
    except KeyboardInterrupt:
        ui.err.print(INTERRUPTED, style="yellow")
        raise typer.Exit(130) from None
    except httpx.TransportError as exc:
        ui.fail(
            "Connection lost",
            str(exc) or type(exc).__name__,
            "Run the same command again to continue.",
        )


class Transfer:
    """Progress of one transfer, on stderr (stdout is for the result).

    On a terminal: a rich bar with bytes, speed and time left. Otherwise (a log, a script): a
    plain line when the first bytes moved, then at most one a second, and one at the end.
    An instance is the ``on_progress(done, total)`` callback of the transfer.
    """

    def __init__(self, label: str, total: int | None = None, start: int = 0) -> None:
        self.label = label
        self.total = total
        self.start = start
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._shown: int | None = None
        self._shown_at = 0.0

    def __enter__(self) -> Transfer:
        if ui.err.is_terminal:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=ui.err,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=self.total, completed=self.start)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, done: int, total: int | None) -> None:
        if total is not None:
            self.total = total
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done, total=self.total)
            return
        now = time.monotonic()
        finished = done == self.total
        if done == self.start and not finished:
            return
        due = self._shown is None or finished or now - self._shown_at >= 1.0
        if due and done != self._shown:
            self._shown, self._shown_at = done, now
            of = f" of {decimal(self.total)}" if self.total is not None else ""
            ui.err.print(f"{self.label}: {decimal(done)}{of}", soft_wrap=True)


@contextlib.contextmanager
def _working(what: str) -> Iterator[None]:
    """A spinner with ``what`` on a terminal; a plain line otherwise."""
    if ui.err.is_terminal:
        with ui.err.status(what):
            yield
    else:
        ui.err.print(what)
        yield


def send_file(
    credentials: Credentials,
    chat: str,
    file: Path,
    *,
    voice: bool,
    reply_to: str | None,
    chunk: int,
) -> None:
    """Upload ``file`` (continuing an earlier attempt), post it, print the message id."""
    kind: MessageKind = "voice" if voice else "audio"
    with ui.reporting_errors(), _resumable(), ui.client_for(credentials) as client:
        chat_id = resolve_chat(client, chat)["id"]
        message = uploads.send_file(
            client,
            chat_id,
            file,
            voice=voice,
            reply_to=reply_to,
            chunk_size=chunk,
            resume_key=upload_key(file, credentials, chat_id=chat_id, kind=kind, stat=file.stat()),
            progress=_SendProgress(file.name),
        )
        ui.out.print(message["id"], markup=False)


class _SendProgress:
    """How ``voxbox send`` shows a send on stderr (uploads.SendProgress)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def resuming(self, offset: int, length: int | None) -> None:
        of = f" of {decimal(length)}" if length is not None else ""
        ui.err.print(f"Resuming at {decimal(offset)}{of}.", soft_wrap=True)

    def uploading(self, length: int | None, offset: int) -> Transfer:
        return Transfer(f"Uploading {self.name}", length, offset)

    def processing(self) -> contextlib.AbstractContextManager[None]:
        return _working("Processing…")

    def sent_already(self) -> None:
        ui.err.print("It was sent already.")


class DownloadFormat(enum.StrEnum):
    """The ``--format`` choices of ``voxbox download``."""

    original = "original"
    ogg = "ogg"
    mp3 = "mp3"


_FORMATS: dict[DownloadFormat, MediaFormat] = {
    DownloadFormat.original: "original",
    DownloadFormat.ogg: "ogg",
    DownloadFormat.mp3: "mp3",
}


def download(
    message_id: Annotated[str, typer.Argument(help="The id of a voice or audio message.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Where to save it: a file name, or an existing directory to save it in. "
            "Default: the media's own file name (made safe) in the current directory.",
            show_default=False,
        ),
    ] = None,
    format: Annotated[
        DownloadFormat | None,
        typer.Option(
            "--format",
            "-f",
            help="original: the bytes as they were uploaded; ogg: Ogg/Opus; mp3: MP3 (for "
            "players without Opus). Default: original for audio files, ogg for voice messages.",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite the output file if it exists.")
    ] = False,
) -> None:
    """Download the audio of a voice or audio message and print where it was saved.

    A progress bar shows bytes, speed and time left. An existing file is kept unless --force.

    Interrupted? Run the same command again: it continues from FILE.part if the audio is unchanged.
    """
    credentials = ui.load_login()
    with ui.reporting_errors(), _resumable(), ui.client_for(credentials) as client:
        message = client.message(message_id)
        media = message.get("media")
        if not media:
            ui.fail(
                "Nothing to download",
                "the message has no audio (a text message, deleted, or a view-once message "
                "already played)",
            )
        fmt: MediaFormat = (
            _FORMATS[format] if format else "ogg" if message.get("kind") == "voice" else "original"
        )
        name = download_name(media, fmt)
        dest = output / name if output is not None and output.is_dir() else output or Path(name)
        if dest.exists() and not force:
            ui.fail("File exists", f"{dest}; add --force to overwrite it")
        part, _ = part_paths(dest)
        if part.exists():
            ui.err.print(f"Continuing the partial download in {part}.", soft_wrap=True)
        with Transfer(f"Downloading {dest.name}") as progress:
            uploads.download_media(client, media["id"], dest, fmt, progress)
    ui.out.print(str(dest), markup=False, soft_wrap=True)


def export(
    chat: Annotated[str, typer.Argument(help="The chat: its id, or a handle or group title.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="The zip to write. Default: 'voxbox CHAT.zip' in the current directory.",
            show_default=False,
        ),
    ] = None,
    media: Annotated[
        bool, typer.Option("--media/--no-media", help="Include the voice notes and audio files.")
    ] = True,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite the output file if it exists.")
    ] = False,
) -> None:
    """Export a chat as a zip and print where it was saved.

    The zip holds chat.txt (WhatsApp's format), messages.json, media/ and chat.html.

    chat.html shows the chat and plays its voice notes in any browser, offline.
    """
    credentials = ui.load_login()
    with ui.reporting_errors(), _resumable(), ui.client_for(credentials) as client:
        found = resolve_chat(client, chat)
        title = found.get("title") or chat
        dest = output or Path(safe_filename(f"voxbox {title}.zip", "voxbox chat.zip"))
        if dest.exists() and not force:
            ui.fail("File exists", f"{dest}; add --force to overwrite it")
        with Transfer(f"Exporting {dest.name}") as progress:
            uploads.download_export(client, found["id"], dest, media=media, on_progress=progress)
    ui.out.print(str(dest), markup=False, soft_wrap=True)


def sync_media(
    directory: Annotated[Path, typer.Argument(help="The folder to keep the media in.")],
    mirror: Annotated[
        bool,
        typer.Option(
            "--mirror",
            help="Also delete files whose messages are gone (deleted, or no longer yours to "
            "see). Without it nothing is ever deleted.",
        ),
    ] = False,
) -> None:
    """Keep a folder of every voice note and audio file of your chats, sent and received.

    Voice notes go to DIR/CHAT/Voice Notes/YYYY-MM/YYYY-MM-DD HH.MM.SS SENDER.opus.

    Audio files go to DIR/CHAT/Audio/ under the name they were sent with.

    Files are tagged (title, artist, album, date), so music players list them.

    A second run downloads only what is new; an interrupted run continues.
    """
    credentials = ui.load_login()
    with ui.reporting_errors(), _resumable(), ui.client_for(credentials) as client:
        current: list[Transfer] = []

        def starting(name: str) -> None:
            if current:
                current.pop().__exit__(None, None, None)
            current.append(Transfer(name).__enter__())

        try:
            report = sync(
                client,
                directory,
                mirror=mirror,
                on_file=starting,
                on_progress=lambda done, total: current[-1](done, total),
            )
        finally:
            if current:
                current.pop().__exit__(None, None, None)
    removed = f", {len(report.removed)} removed" if mirror else ""
    ui.err.print(
        f"{len(report.downloaded)} downloaded, {report.kept} already there{removed}.",
        soft_wrap=True,
    )
    for path in report.untagged:
        ui.err.print(f"Not tagged (its format has no tags): {path}", soft_wrap=True)
