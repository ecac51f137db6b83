"""Client-side CLI commands: log in to a server, list chats, send text and audio files,
download media, follow events.

They talk to a server over HTTP with :mod:`voxbox.client` using the login stored by
``voxbox login`` (see :mod:`voxbox.client.config`). API errors end the command with exit code 1
and ``Error: <title>: <detail>`` on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any, NoReturn
from urllib.parse import urlsplit

import httpx
import typer
from rich.console import Console
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
from rich.table import Table
from rich.text import Text

from voxbox.client.config import (
    Credentials,
    PendingUpload,
    delete_credentials,
    forget_pending_upload,
    load_credentials,
    load_listen_seq,
    load_pending_upload,
    save_credentials,
    save_listen_seq,
    save_pending_upload,
    upload_key,
)
from voxbox.client.events import listen
from voxbox.client.http import (
    API_PREFIX,
    DEFAULT_CHUNK_SIZE,
    MediaFormat,
    MessageKind,
    VoxboxAPIError,
    VoxboxClient,
    VoxboxError,
    upload_id_of,
)
from voxbox.client.resolve import resolve_chat
from voxbox.client.uploads import FileUpload, download_name, part_paths

_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False)

_CHAT_HELP = (
    "The chat: 'self' (or 'me') for your own notes, a chat id, a group's exact title, "
    "or a user's handle (optionally '@handle') for your direct chat with them."
)
_CHAT_EVENTS = ("chat.created", "chat.updated")  # their data is the chat itself
_RECEIPT_VERBS = {"delivered": "received", "read": "read", "played": "played"}
_INTERRUPTED = "Interrupted; run the same command again to continue."
# Answers to posting an upload that mean the file will never be accepted as it is.
_REFUSED = frozenset({413, 415, 422})


def register(app: typer.Typer) -> None:
    """Add the client commands (login, register, logout, chats, send, download, invite,
    listen)."""
    app.command("login")(login)
    app.command("register")(register_account)
    app.command("logout")(logout)
    app.command("chats")(list_chats)
    app.command("send")(send)
    app.command("download")(download)
    app.command("invite")(invite)
    app.command("listen")(listen_events)


# -- shared plumbing ------------------------------------------------------------------------


def _fail(title: str, detail: str = "", hint: str = "") -> NoReturn:
    message = f"Error: {title}: {detail}" if detail else f"Error: {title}"
    _err.print(Text(message, style="red"), soft_wrap=True)
    if hint:
        _err.print(hint, soft_wrap=True)
    raise typer.Exit(1)


@contextlib.contextmanager
def _reporting_errors(*, logged_in: bool = True) -> Iterator[None]:
    """Turn client errors inside the block into an error line and exit code 1."""
    try:
        yield
    except VoxboxAPIError as exc:
        # A rejected stored token means the login is stale, not that the command was wrong.
        stale = logged_in and exc.status == 401
        _fail(exc.title, exc.detail, "Run 'voxbox login URL' to log in again." if stale else "")
    except VoxboxError as exc:
        _fail(exc.title, exc.detail)
    except httpx.HTTPError as exc:
        _fail("Cannot reach the server", str(exc) or type(exc).__name__)
    except BrokenPipeError:
        # The reader went away (`voxbox listen --json | head`): nothing to report to anyone.
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(1) from None
    except OSError as exc:
        _fail("File access failed", str(exc))


@contextlib.contextmanager
def _resumable() -> Iterator[None]:
    """For a transfer that a re-run continues: Ctrl-C inside the block ends the command with
    exit code 130, a lost connection with exit code 1, both with a hint to run it again."""
    try:
        yield
    except KeyboardInterrupt:
        _err.print(_INTERRUPTED, style="yellow")
        raise typer.Exit(130) from None
    except httpx.TransportError as exc:
        _fail(
            "Connection lost",
            str(exc) or type(exc).__name__,
            "Run the same command again to continue.",
        )


class _Transfer:
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

    def __enter__(self) -> _Transfer:
        if _err.is_terminal:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=_err,
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
            _err.print(f"{self.label}: {decimal(done)}{of}", soft_wrap=True)


@contextlib.contextmanager
def _working(what: str) -> Iterator[None]:
    """A spinner with ``what`` on a terminal; a plain line otherwise."""
    if _err.is_terminal:
        with _err.status(what):
            yield
    else:
        _err.print(what)
        yield


def _credentials() -> Credentials:
    """The stored login; exits with a hint when there is none."""
    with _reporting_errors():
        credentials = load_credentials()
    if credentials is None:
        _fail("Not logged in", hint="Run 'voxbox login URL' (or 'voxbox register URL') first.")
    return credentials


def _client(credentials: Credentials) -> VoxboxClient:
    return VoxboxClient(credentials.url, credentials.token)


def _server_root(url: str) -> str:
    """The server root for a URL as typed (trailing slash or API prefix tolerated)."""
    root = url.strip().rstrip("/").removesuffix(API_PREFIX)
    parts = urlsplit(root)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise typer.BadParameter(
            "expected the server's address, like https://voxbox.example.org", param_hint="URL"
        )
    return root


def _password(password_file: Path | None, *, confirm: bool) -> str:
    """The password from the file's first line, or prompted for (hidden) when no file."""
    if password_file is None:
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=confirm))
    lines = password_file.read_text(encoding="utf-8").splitlines()
    if not lines or not lines[0]:
        raise typer.BadParameter("the file is empty", param_hint="--password-file")
    return lines[0]


def _remember(root: str, auth: Mapping[str, Any]) -> None:
    """Store the ``{user, token}`` answer of login/register as the current login."""
    credentials = Credentials(url=root, token=auth["token"], handle=auth["user"]["handle"])
    with _reporting_errors():
        save_credentials(credentials)
    _out.print(f"Logged in to {root} as {credentials.handle}.", markup=False)


def _print_json(data: Any, indent: int | None = None) -> None:
    # Plain write, not rich: rich would wrap long lines and break one-object-per-line output.
    sys.stdout.write(json.dumps(data, indent=indent, ensure_ascii=False) + "\n")
    sys.stdout.flush()


# -- presentation ---------------------------------------------------------------------------


def chat_label(chat: Mapping[str, Any], me: str) -> str:
    """How a chat is named to ``me``: the other member of a direct chat, a group's title,
    or ``self`` for the self chat (what ``voxbox send`` accepts for it)."""
    kind = chat.get("kind")
    if kind == "self":
        return "self"
    if kind == "direct":
        others = [m["handle"] for m in chat.get("members", []) if m.get("handle") != me]
        return ", ".join(others) or me
    return str(chat.get("title") or "(untitled group)")


def _duration(ms: int) -> str:
    seconds = round(ms / 1000)
    return f"{seconds // 60}:{seconds % 60:02d}"


def message_preview(message: Mapping[str, Any]) -> str:
    """A one-line summary of a message's content."""
    if message.get("deleted"):
        return "(deleted)"
    lines = str(message.get("text") or "").strip().splitlines()
    first_line = lines[0] if lines else ""
    if len(lines) > 1:
        first_line += " …"
    if message.get("kind") == "text":
        return first_line
    media = message.get("media")
    if message.get("kind") == "voice":
        summary = "Voice message"
    else:
        summary = f"Audio {media['filename']}" if media and media.get("filename") else "Audio"
    if media and media.get("duration_ms") is not None:
        summary += f" ({_duration(media['duration_ms'])})"
    if message.get("view_once"):
        summary += ", view once"
    return f"{summary}: {first_line}" if first_line else summary


def _event_chat_id(frame: Mapping[str, Any]) -> str | None:
    """The id of the chat an event frame is about, if any."""
    data: Mapping[str, Any] = frame.get("data") or {}
    chat_id = data["id"] if frame.get("type") in _CHAT_EVENTS else data.get("chat_id")
    return str(chat_id) if chat_id else None


def describe_event(frame: Mapping[str, Any], chat: Mapping[str, Any] | None, me: str) -> Text:
    """One line for an event frame (other than ``ready``): ``[chat] who: what``.

    ``chat`` is the chat the event belongs to, when known; otherwise its id is shown.
    """
    kind = str(frame.get("type"))
    data: Mapping[str, Any] = frame.get("data") or {}
    chat_id = _event_chat_id(frame)
    line = Text()
    if chat is not None:
        line.append(f"[{chat_label(chat, me)}] ", style="bold")
    elif chat_id:
        line.append(f"[{chat_id}] ", style="bold")

    if kind in ("message.created", "message.updated"):
        line.append(str(data.get("sender")), style="cyan")
        line.append(": " + message_preview(data))
        if kind == "message.updated":
            line.append(" (updated)", style="dim")
    elif kind == "receipt":
        verb = _RECEIPT_VERBS.get(str(data.get("kind")), str(data.get("kind")))
        line.append(f"{data.get('handle')} {verb} {data.get('message_id')}", style="dim")
    elif kind == "presence":
        state = data.get("state")
        doing = "stopped typing or recording" if state == "idle" else f"is {state}…"
        line.append(f"{data.get('handle')} {doing}", style="dim")
    elif kind == "chat.created":
        line.append("chat created", style="dim")
    elif kind == "chat.updated":
        line.append("chat updated", style="dim")
    elif kind == "member.removed":
        line.append(f"{data.get('handle')} is no longer a member", style="dim")
    else:
        line.append(kind, style="dim")
    return line


# -- commands -------------------------------------------------------------------------------

_UrlArg = Annotated[
    str, typer.Argument(help="The server's address, e.g. https://voxbox.example.org.")
]
_PasswordFileOpt = Annotated[
    Path | None,
    typer.Option(
        exists=True,
        dir_okay=False,
        readable=True,
        help="Read the password from the first line of this file instead of prompting.",
    ),
]


def login(
    url: _UrlArg,
    handle: Annotated[str | None, typer.Option(help="Your handle (prompted when missing).")] = None,
    password_file: _PasswordFileOpt = None,
) -> None:
    """Log in to a voxbox server and remember the login for the other commands.

    The token is kept, readable only by you, in credentials.json in the config directory.

    Set VOXBOX_CONFIG_DIR to use another config directory.
    """
    root = _server_root(url)
    handle = handle or str(typer.prompt("Handle"))
    password = _password(password_file, confirm=False)
    with _reporting_errors(logged_in=False), VoxboxClient(root) as client:
        auth = client.login(handle, password)
    _remember(root, auth)


def register_account(
    url: _UrlArg,
    handle: Annotated[
        str | None, typer.Option(help="The handle to register (prompted when missing).")
    ] = None,
    display_name: Annotated[
        str | None, typer.Option(help="Your name as others see it (default: the handle).")
    ] = None,
    invite: Annotated[
        str | None,
        typer.Option(help="Invite code; needed when the server's registration is invite-only."),
    ] = None,
    password_file: _PasswordFileOpt = None,
) -> None:
    """Create an account on a voxbox server and log in with it.

    Handles are 3-32 characters of a-z, 0-9, '_' and '.'; passwords at least 8 characters.
    """
    root = _server_root(url)
    handle = handle or str(typer.prompt("Handle"))
    password = _password(password_file, confirm=True)
    with _reporting_errors(logged_in=False), VoxboxClient(root) as client:
        auth = client.register(handle, password, display_name=display_name, invite=invite)
    _remember(root, auth)


def logout() -> None:
    """Log out: revoke the token on the server and forget the stored login."""
    credentials = _credentials()
    revoke_error = ""
    try:
        with _client(credentials) as client:
            client.logout()
    except VoxboxAPIError as exc:
        if exc.status != 401:  # 401: the token was revoked already, which is the goal
            revoke_error = str(exc)
    except httpx.HTTPError as exc:
        revoke_error = str(exc) or type(exc).__name__
    with _reporting_errors():
        delete_credentials()
    if revoke_error:
        _fail(
            "Could not revoke the token on the server",
            f"{revoke_error}. The stored login was removed, but the token may still work.",
        )
    _out.print("Logged out.")


def list_chats(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the server's JSON instead of a table.")
    ] = False,
) -> None:
    """List your chats, most recent activity first, with unread counts."""
    credentials = _credentials()
    with _reporting_errors():
        with _client(credentials) as client:
            data = client.chats()
        if as_json:
            _print_json(data, indent=2)
        else:
            _out.print(_chats_table(data["chats"], credentials.handle))


def _chats_table(chats: list[dict[str, Any]], me: str) -> Table:
    table = Table(box=None, header_style="bold")
    table.add_column("Chat", no_wrap=True)
    table.add_column("Kind")
    table.add_column("Unread", justify="right")
    table.add_column("Last message", overflow="ellipsis", no_wrap=True, max_width=50)
    table.add_column("ID", style="dim", no_wrap=True)
    for chat in chats:
        last = chat.get("last_message")
        preview = f"{last['sender']}: {message_preview(last)}" if last else ""
        unread = chat.get("unread_count") or 0
        table.add_row(
            Text(chat_label(chat, me)),
            chat["kind"],
            Text(str(unread), style="bold" if unread else "dim"),
            Text(preview),
            chat["id"],
        )
    return table


def send(
    chat: Annotated[str, typer.Argument(help=_CHAT_HELP)],
    file: Annotated[
        Path | None,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            show_default=False,
            help="An audio file to send (MP3, M4A/AAC, WAV, FLAC, Ogg, Opus, WebM, AMR/3GP, or "
            "a video whose sound track is taken). Give either FILE or --text.",
        ),
    ] = None,
    text: Annotated[
        str | None,
        typer.Option("--text", "-t", help="The text to send (instead of a FILE)."),
    ] = None,
    voice: Annotated[
        bool,
        typer.Option(
            "--voice",
            help="Send FILE as a voice message (a voice note) instead of an audio file that "
            "keeps its name and original bytes.",
        ),
    ] = False,
    reply_to: Annotated[
        str | None, typer.Option(help="The id of the message this one answers.")
    ] = None,
    chunk_size: Annotated[
        int,
        typer.Option(
            "--chunk-size",
            min=1,
            hidden=True,
            envvar="VOXBOX_UPLOAD_CHUNK_SIZE",
            help="Bytes per upload request.",
        ),
    ] = DEFAULT_CHUNK_SIZE,
) -> None:
    """Send a text message or an audio file to a chat and print the new message's id.

    Give either FILE or --text. FILE is sent as an audio file, or with --voice as a voice message.

    While uploading, a progress bar shows bytes, speed and time left; then "Processing…".

    Interrupted (Ctrl-C, lost connection)? Run the same command again: the upload resumes.

    Nothing is ever posted twice, even when the interruption came after the message was posted.

    Unfinished uploads are kept in uploads.json in the config directory (VOXBOX_CONFIG_DIR).

    Naming a user you have no chat with yet starts a direct chat with them.
    """
    if (file is None) == (text is None):
        raise typer.BadParameter("give either a FILE or --text, not both", param_hint="FILE")
    if voice and file is None:
        raise typer.BadParameter("--voice needs a FILE", param_hint="--voice")
    credentials = _credentials()
    if file is not None:
        _send_file(credentials, chat, file, voice=voice, reply_to=reply_to, chunk=chunk_size)
        return
    assert text is not None
    with _reporting_errors():
        with _client(credentials) as client:
            target = resolve_chat(client, chat)
            message = client.send_text(target["id"], text, reply_to=reply_to)
        _out.print(message["id"], markup=False)


def _send_file(
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
    with _reporting_errors(), _resumable(), _client(credentials) as client:
        chat_id = resolve_chat(client, chat)["id"]
        key = upload_key(file, credentials, chat_id=chat_id, kind=kind, stat=file.stat())
        pending = load_pending_upload(key)
        upload = FileUpload(client, file, kind=kind, chat_id=chat_id, chunk_size=chunk)
        message: dict[str, Any] | None = None
        if pending is not None:
            if upload.resume(pending.upload_url):
                _err.print(
                    f"Resuming at {decimal(upload.offset)} of {decimal(upload.length)}.",
                    soft_wrap=True,
                )
            else:
                message = _posted_already(client, chat_id, pending, kind, reply_to)
        if message is None:
            if upload.url is None:
                client_id = pending.client_id if pending is not None else uuid.uuid4().hex
                pending = PendingUpload(upload_url=upload.create(), client_id=client_id)
                save_pending_upload(key, pending, path=file)
            assert pending is not None
            with _Transfer(f"Uploading {file.name}", upload.length, upload.offset) as progress:
                upload.run(progress)
            with _working("Processing…"):
                message = _post_upload(client, chat_id, upload, pending, kind, reply_to, key)
        else:
            _err.print("It was sent already.")
        forget_pending_upload(key)
        _out.print(message["id"], markup=False)


def _posted_already(
    client: VoxboxClient,
    chat_id: str,
    pending: PendingUpload,
    kind: MessageKind,
    reply_to: str | None,
) -> dict[str, Any] | None:
    """The message an earlier run posted from an upload the server no longer has, if any.

    The upload being gone may mean its message was posted just before the interruption:
    posting it again with the same client_id answers with that message (and does nothing).
    Any refusal means it was not posted.
    """
    try:
        return client.send_upload(
            chat_id,
            upload_id_of(pending.upload_url),
            kind=kind,
            client_id=pending.client_id,
            reply_to=reply_to,
        )
    except VoxboxAPIError as exc:
        if 400 <= exc.status < 500 and exc.status not in (401, 429):
            return None
        raise


def _post_upload(
    client: VoxboxClient,
    chat_id: str,
    upload: FileUpload,
    pending: PendingUpload,
    kind: MessageKind,
    reply_to: str | None,
    key: str,
) -> dict[str, Any]:
    """Post the complete upload as a message; forget it if the server refuses the file."""
    try:
        return client.send_upload(
            chat_id, upload.upload_id, kind=kind, client_id=pending.client_id, reply_to=reply_to
        )
    except VoxboxAPIError as exc:
        if exc.status in _REFUSED:
            # Sending it again would be refused again: nothing to resume.
            forget_pending_upload(key)
            with contextlib.suppress(VoxboxAPIError, httpx.HTTPError):
                client.delete_upload(pending.upload_url)
        raise


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
    credentials = _credentials()
    with _reporting_errors(), _resumable(), _client(credentials) as client:
        message = client.message(message_id)
        media = message.get("media")
        if not media:
            _fail(
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
            _fail("File exists", f"{dest}; add --force to overwrite it")
        part, _ = part_paths(dest)
        if part.exists():
            _err.print(f"Continuing the partial download in {part}.", soft_wrap=True)
        with _Transfer(f"Downloading {dest.name}") as progress:
            client.download_media(media["id"], dest, fmt, progress)
    _out.print(str(dest), markup=False, soft_wrap=True)


def invite() -> None:
    """Create a single-use invite for someone to register with (admins only); print its code."""
    credentials = _credentials()
    with _reporting_errors(), _client(credentials) as client:
        created = client.create_invite()
    _out.print(created["code"], markup=False)
    _err.print(
        f"Valid until {created['expires_at']}. They run: voxbox register "
        f"{credentials.url} --invite {created['code']}",
        style="dim",
    )


async def _follow(
    credentials: Credentials,
    client: VoxboxClient,
    after: int,
    as_json: bool,
    chats: dict[str, Mapping[str, Any]],
) -> None:
    """Print every frame of the event stream and record each handled seq."""
    async for frame in listen(credentials.url, credentials.token, after):
        kind = frame.get("type")
        if as_json:
            _print_json(frame)
        elif kind == "ready":
            _err.print(
                f"Listening (caught up to event {frame.get('seq')}); press Ctrl-C to stop.",
                style="dim",
            )
        elif kind == "error":  # the server's complaint about a frame we sent
            _err.print(Text(f"Server error: {frame.get('detail')}", style="red"))
        else:
            data = frame.get("data") or {}
            chat_id = _event_chat_id(frame)
            if kind in _CHAT_EVENTS:
                chats[data["id"]] = data
            elif chat_id and chat_id not in chats:
                # A chat one cannot fetch (e.g. just left) is shown by its id instead.
                with contextlib.suppress(VoxboxAPIError):
                    chats[chat_id] = await asyncio.to_thread(client.chat, chat_id)
            chat = chats.get(chat_id) if chat_id else None
            _out.print(describe_event(frame, chat, credentials.handle), soft_wrap=True)
        seq = frame.get("seq")
        if isinstance(seq, int) and kind != "ready":
            save_listen_seq(credentials, seq)


def listen_events(
    after: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Start after this event seq (0: replay everything). "
            "Default: where the last 'voxbox listen' stopped.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each event as one JSON object per line.")
    ] = False,
) -> None:
    """Print your events live: messages, receipts, typing, chat changes.

    Events missed since the last 'voxbox listen' are printed first.

    A dropped connection is re-opened without losing or repeating events. Stop with Ctrl-C.
    """
    credentials = _credentials()
    with _reporting_errors(), _client(credentials) as client:
        start = after if after is not None else load_listen_seq(credentials) or 0
        chats: dict[str, Mapping[str, Any]] = {}
        if not as_json:
            chats = {chat["id"]: chat for chat in client.chats()["chats"]}
        # Ctrl-C is the normal way to stop listening, not an error.
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_follow(credentials, client, start, as_json, chats))
