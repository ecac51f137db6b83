"""Client-side CLI commands: log in to a server, show and change one's account (``me``), list
chats, send text and audio files, download media, follow events.

They talk to a server over HTTP with :mod:`voxbox.client` using the login stored by
``voxbox login`` (see :mod:`voxbox.client.config`). API errors end the command with exit code 1
and ``Error: <title>: <detail>`` on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
import typer
from rich.filesize import decimal
from rich.table import Table
from rich.text import Text

from voxbox.cli import output as ui
from voxbox.cli import transfer_commands
from voxbox.client.config import (
    Credentials,
    delete_credentials,
    load_listen_seq,
    save_credentials,
    save_listen_seq,
)
from voxbox.client.events import listen
from voxbox.client.http import (
    API_PREFIX,
    DEFAULT_CHUNK_SIZE,
    VoxboxAPIError,
    VoxboxClient,
)
from voxbox.client.resolve import resolve_chat

_CHAT_HELP = (
    "The chat: 'self' (or 'me') for your own notes, a chat id, a group's exact title, "
    "or a user's handle (optionally '@handle') for your direct chat with them."
)
_CHAT_EVENTS = ("chat.created", "chat.updated")  # their data is the chat itself
_MEDIA_EVENTS = ("media.ready", "media.failed")  # their data is the media
_RECEIPT_VERBS = {"delivered": "received", "read": "read", "played": "played"}


def register(app: typer.Typer) -> None:
    """Add the client commands (login, register, logout, me, chats, group, send, download,
    export, sync, invite, listen, info, email)."""
    app.command("login")(login)
    app.command("register")(register_account)
    app.command("logout")(logout)
    app.command("me")(show_me)
    app.command("chats")(list_chats)
    app.command("group")(create_group)
    app.command("send")(send)
    app.command("download")(transfer_commands.download)
    app.command("export")(transfer_commands.export)
    app.command("sync")(transfer_commands.sync_media)
    app.command("invite")(invite)
    app.command("listen")(listen_events)
    app.command("info")(message_info)
    app.command("email")(email_message)


# -- shared plumbing ------------------------------------------------------------------------


def _server_root(url: str) -> str:
    """The server root for a URL as typed (trailing slash or API prefix tolerated)."""
    root = url.strip().rstrip("/").removesuffix(API_PREFIX)
    if "://" not in root:  # "127.0.0.1:8080" or "voxbox.example.org": as a browser would
        root = ("http://" if _is_local(root) else "https://") + root
    parts = urlsplit(root)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise typer.BadParameter(
            "expected the server's address, like https://voxbox.example.org", param_hint="URL"
        )
    return root


def _is_local(address: str) -> bool:
    host = urlsplit("//" + address).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.") or host.startswith("192.168.")


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
    with ui.reporting_errors():
        save_credentials(credentials)
    ui.out.print(f"Logged in to {root} as {credentials.handle}.", markup=False)


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
    withdrawn = message.get("withdrawn")
    if withdrawn:
        return f"(withdrawn: {withdrawn.get('reason')})"
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


TRANSCRIPT_SHOWN = 1000  # characters of a transcript a listen line shows at most


def transcript_line(message: Mapping[str, Any]) -> Text | None:
    """The line under a voice or audio message that shows what is said in it, once its
    transcript is ready (``“and mister john …”``); ``None`` while there is nothing to show."""
    transcript: Mapping[str, Any] = message.get("transcript") or {}
    if transcript.get("state") != "ready":
        return None
    said = " ".join(str(transcript.get("text") or "").split())
    if not said:
        return Text("  (no words recognised)", style="dim")
    if len(said) > TRANSCRIPT_SHOWN:
        said = said[:TRANSCRIPT_SHOWN].rsplit(" ", 1)[0] + " …"
    return Text(f"  “{said}”", style="italic")


def names(handles: list[Any], shown: int = 2) -> str:
    """``bob``, ``ann and bob``, ``ann, bob and cid``, ``ann, bob and 3 others``."""
    items = [str(h) for h in handles]
    if len(items) > shown + 1:
        items = [*items[:shown], f"{len(items) - shown} others"]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _event_chat_id(frame: Mapping[str, Any]) -> str | None:
    """The id of the chat an event frame is about, if any."""
    data: Mapping[str, Any] = frame.get("data") or {}
    chat_id = data["id"] if frame.get("type") in _CHAT_EVENTS else data.get("chat_id")
    return str(chat_id) if chat_id else None


def describe_event(
    frame: Mapping[str, Any],
    chat: Mapping[str, Any] | None,
    me: str,
    message: Mapping[str, Any] | None = None,
) -> Text:
    """One line for an event frame (other than ``ready``): ``[chat] who: what``, and for a
    voice or audio message whose transcript is ready, a second line with what is said.

    ``chat`` is the chat the event belongs to, when known; otherwise its id is shown.
    ``message``: for ``media.*`` events, the message that carries the media, when seen.
    """
    kind = str(frame.get("type"))
    data: Mapping[str, Any] = frame.get("data") or {}
    chat_id = _event_chat_id(frame)
    line = Text()
    if chat is not None:
        line.append(f"[{chat_label(chat, me)}] ", style="bold")
    elif chat_id:
        line.append(f"[{chat_id}] ", style="bold")

    withdrawn = data.get("withdrawn") if kind == "message.updated" else None
    if withdrawn and data.get("sender") == me:
        # The server took back what the user sent: say so plainly, and why.
        what = "voice message" if data.get("kind") == "voice" else "audio message"
        to = chat_label(chat, me) if chat is not None else chat_id
        line.append(
            f"your {what} to {to} could not be processed: {withdrawn.get('reason')}", style="red"
        )
    elif kind in ("message.created", "message.updated"):
        line.append(str(data.get("sender")), style="cyan")
        line.append(": " + message_preview(data))
        transcript = data.get("transcript") or {}
        if kind == "message.updated":
            # A voice message that is neither deleted nor withdrawn changes when its transcript
            # is made.
            state = transcript.get("state")
            if state == "ready":
                note = " (transcribed)"
            elif state == "failed":
                note = f" (not transcribed: {transcript.get('error') or 'it failed'})"
            else:
                note = " (updated)"
            line.append(note, style="dim")
        said = transcript_line(data)
        if said is not None:
            line.append("\n").append_text(said)
    elif kind == "receipt":
        verb = _RECEIPT_VERBS.get(str(data.get("kind")), str(data.get("kind")))
        # A group's receipts come coalesced: one event naming every member (older servers
        # send only ``handle``).
        handles = data.get("handles") or [data.get("handle")]
        line.append(f"{names(handles)} {verb} {data.get('message_id')}", style="dim")
    elif kind == "presence":
        state = data.get("state")
        doing = "stopped typing or recording" if state == "idle" else f"is {state}…"
        line.append(f"{data.get('handle')} {doing}", style="dim")
    elif kind in ("media.ready", "media.failed"):
        if message is not None:
            line.append(str(message.get("sender")), style="cyan")
            line.append(": ")
        voice = data.get("kind") == "voice"
        what = "voice message" if voice else f"audio file {data.get('filename')}"
        if kind == "media.ready":
            length = data.get("duration_ms")
            line.append(f"{what} ready" + (f" ({_duration(length)})" if length else ""))
        else:
            line.append(f"{what} could not be processed: {data.get('error')}", style="red")
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
    with ui.reporting_errors(logged_in=False), VoxboxClient(root) as client:
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
    with ui.reporting_errors(logged_in=False), VoxboxClient(root) as client:
        auth = client.register(handle, password, display_name=display_name, invite=invite)
    _remember(root, auth)


def logout() -> None:
    """Log out: revoke the token on the server and forget the stored login."""
    credentials = ui.load_login()
    revoke_error = ""
    try:
        with ui.client_for(credentials) as client:
            client.logout()
    except VoxboxAPIError as exc:
        if exc.status != 401:  # 401: the token was revoked already, which is the goal
            revoke_error = str(exc)
    except httpx.HTTPError as exc:
        revoke_error = str(exc) or type(exc).__name__
    with ui.reporting_errors():
        delete_credentials()
    if revoke_error:
        ui.fail(
            "Could not revoke the token on the server",
            f"{revoke_error}. The stored login was removed, but the token may still work.",
        )
    ui.out.print("Logged out.")


class Switch(enum.StrEnum):
    """An on/off choice (``--transcribe on``)."""

    on = "on"
    off = "off"


def show_me(
    transcribe: Annotated[
        Switch | None,
        typer.Option(
            "--transcribe",
            help="Turn transcripts of the voice and audio messages you send from now on 'on' or "
            "'off' (those sent before keep theirs).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the server's JSON instead of text.")
    ] = False,
) -> None:
    """Show your account: handle, name, storage used, and whether your voice messages get
    transcripts.

    With --transcribe on|off, change that first.

    Transcripts are made by the server in the background, when it runs a transcription engine;
    everyone in the chat sees them, and search finds the words said.
    """
    credentials = ui.load_login()
    with ui.reporting_errors():
        with ui.client_for(credentials) as client:
            if transcribe is None:
                data = client.me()
            else:
                data = client.update_me(transcribe=transcribe is Switch.on)
        if transcribe is not None:
            ui.err.print(
                "From now on, the voice and audio messages you send get transcripts."
                if data["transcribe"]
                else "From now on, the voice and audio messages you send get no transcripts; "
                "those sent before keep theirs.",
                soft_wrap=True,
            )
        if as_json:
            ui.print_json(data, indent=2)
            return
        ui.out.print(_account_summary(data), soft_wrap=True)


def _account_summary(me: Mapping[str, Any]) -> Text:
    summary = Text()
    summary.append(str(me["handle"]), style="bold")
    summary.append(f" ({me['display_name']})" + (", server admin" if me.get("is_admin") else ""))
    storage = me.get("storage")
    if storage:
        quota = storage.get("quota_bytes")
        summary.append(
            f"\nStorage: {decimal(storage['used_bytes'])} used of "
            + (f"{decimal(quota)}" if quota else "no quota")
            + f"; {storage['open_uploads']} of {storage['open_uploads_max']} open uploads"
        )
    summary.append("\nTranscripts of your voice and audio messages: ")
    summary.append("on" if me.get("transcribe") else "off", style="bold")
    return summary


def list_chats(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the server's JSON instead of a table.")
    ] = False,
) -> None:
    """List your chats, most recent activity first, with unread counts."""
    credentials = ui.load_login()
    with ui.reporting_errors():
        with ui.client_for(credentials) as client:
            data = client.chats()
        if as_json:
            ui.print_json(data, indent=2)
        else:
            ui.out.print(_chats_table(data["chats"], credentials.handle))


def create_group(
    title: Annotated[str, typer.Argument(help="The group's name.")],
    handles: Annotated[
        list[str], typer.Argument(help="The handles of the members to add (you are in it).")
    ],
) -> None:
    """Create a group with you and the given users, and print its id."""
    credentials = ui.load_login()
    with ui.reporting_errors(), ui.client_for(credentials) as client:
        chat = client.create_group(title, [h.lstrip("@") for h in handles])
    ui.out.print(chat["id"])


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
    if file is None and text is None:
        raise typer.BadParameter("give a FILE to send, or --text TEXT", param_hint="FILE")
    if file is not None and text is not None:
        raise typer.BadParameter("give either a FILE or --text, not both", param_hint="FILE")
    if voice and file is None:
        raise typer.BadParameter("--voice needs a FILE", param_hint="--voice")
    credentials = ui.load_login()
    if file is not None:
        transfer_commands.send_file(
            credentials, chat, file, voice=voice, reply_to=reply_to, chunk=chunk_size
        )
        return
    assert text is not None
    with ui.reporting_errors():
        with ui.client_for(credentials) as client:
            target = resolve_chat(client, chat)
            message = client.send_text(target["id"], text, reply_to=reply_to)
        ui.out.print(message["id"], markup=False)


def invite() -> None:
    """Create a single-use invite for someone to register with (admins only); print its code."""
    credentials = ui.load_login()
    with ui.reporting_errors(), ui.client_for(credentials) as client:
        created = client.create_invite()
    ui.out.print(created["code"], markup=False)
    ui.err.print(
        f"Valid until {created['expires_at']}. They run: voxbox register "
        f"{credentials.url} --invite {created['code']}",
        style="dim",
    )


async def _follow(
    credentials: Credentials,
    client: VoxboxClient,
    user_id: str,
    after: int,
    as_json: bool,
    chats: dict[str, Mapping[str, Any]],
) -> None:
    """Print every frame of the event stream and record each handled seq."""
    media_messages: dict[str, Mapping[str, Any]] = {}  # media id -> the message carrying it
    async for frame in listen(credentials.url, credentials.token, after):
        kind = frame.get("type")
        reset = kind == "ready" and frame.get("reset") is True
        if reset:  # the saved position is past the server's log: start again at its end
            save_listen_seq(credentials, user_id, frame["seq"])
        if as_json:
            ui.print_json(frame)
        elif reset:
            await _resync(client, frame["seq"], chats, credentials.handle)
        elif kind == "ready":
            ui.err.print(
                f"Listening (caught up to event {frame.get('seq')}); press Ctrl-C to stop.",
                style="dim",
            )
        elif kind == "error":  # the server's complaint about a frame we sent
            ui.err.print(Text(f"Server error: {frame.get('detail')}", style="red"))
        else:
            data = frame.get("data") or {}
            chat_id = _event_chat_id(frame)
            carrier = media_messages.get(data.get("id", "")) if kind in _MEDIA_EVENTS else None
            if carrier is not None:
                chat_id = carrier.get("chat_id")
            elif kind == "message.created" and data.get("media"):
                media_messages[data["media"]["id"]] = data
            if kind in _CHAT_EVENTS:
                chats[data["id"]] = data
            elif chat_id and chat_id not in chats:
                # A chat one cannot fetch (e.g. just left) is shown by its id instead.
                with contextlib.suppress(VoxboxAPIError):
                    chats[chat_id] = await asyncio.to_thread(client.chat, chat_id)
            chat = chats.get(chat_id) if chat_id else None
            line = describe_event(frame, chat, credentials.handle, carrier)
            ui.out.print(line, soft_wrap=True)
        seq = frame.get("seq")
        if isinstance(seq, int) and kind != "ready":
            save_listen_seq(credentials, user_id, seq)


async def _resync(
    client: VoxboxClient, seq: int, chats: dict[str, Mapping[str, Any]], me: str
) -> None:
    """After a reset: say so, reload the chats and show which have unread messages (events
    from before the reset are not replayed, so this is where a missed message shows up)."""
    ui.err.print(
        f"The server's event log ends before where this client stopped (the server was "
        f"restored or reset): re-synced at event {seq}.",
        style="yellow",
    )
    fresh = (await asyncio.to_thread(client.chats))["chats"]
    chats.clear()
    chats.update((chat["id"], chat) for chat in fresh)
    for chat in fresh:
        unread = chat.get("unread_count") or 0
        if unread:
            last = chat.get("last_message") or {}
            line = Text(f"[{chat_label(chat, me)}] {unread} unread", style="bold")
            if last:
                line.append(f", last from {last.get('sender')}: {message_preview(last)}")
            ui.out.print(line, soft_wrap=True)
    ui.err.print(f"Listening (caught up to event {seq}); press Ctrl-C to stop.", style="dim")


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

    A voice or audio message's transcript is printed under it, in quotes, when it is ready.

    Events missed since the last 'voxbox listen' are printed first. When the server's log
    ends before that (it was restored or reset), listen says so, starts again at the log's
    end and shows the chats with unread messages.

    A dropped connection is re-opened without losing or repeating events. Stop with Ctrl-C.
    """
    credentials = ui.load_login()
    with ui.reporting_errors(), ui.client_for(credentials) as client:
        user_id = str(client.me()["id"])  # positions are per user: kept by id
        start = after if after is not None else load_listen_seq(credentials, user_id) or 0
        chats: dict[str, Mapping[str, Any]] = {}
        if not as_json:
            chats = {chat["id"]: chat for chat in client.chats()["chats"]}
        # Ctrl-C is the normal way to stop listening, not an error.
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_follow(credentials, client, user_id, start, as_json, chats))


def email_message(
    message_id: Annotated[str, typer.Argument(help="The id of a voice or audio message.")],
    to: Annotated[str, typer.Option("--to", help="The address to send it to.")],
    note: Annotated[
        str | None, typer.Option("--note", help="A few words to go with it.", show_default=False)
    ] = None,
) -> None:
    """Email a voice or audio message, with an MP3 copy for players without Opus.

    The mail says who sent it, when, and how long it is, with your note.

    It goes through the server's mail server; nothing is sent if the server has none.
    """
    credentials = ui.load_login()
    with ui.reporting_errors(), ui.client_for(credentials) as client:
        sent = client.email_message(message_id, to, note)
    ui.err.print(f"Emailed to {sent['to']}.", soft_wrap=True)


def message_info(
    message_id: Annotated[str, typer.Argument(help="The id of a message you sent.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the server's JSON instead of a table.")
    ] = False,
) -> None:
    """Show who got, read and played a message you sent ("Message info"), and when.

    Lists every member the message was sent to; '-' where they have not yet.
    """
    credentials = ui.load_login()
    with ui.reporting_errors():
        with ui.client_for(credentials) as client:
            data = client.message_receipts(message_id)
        if as_json:
            ui.print_json(data, indent=2)
        else:
            ui.out.print(receipts_table(data["receipts"]))


def _local_time(value: str | None) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def receipts_table(receipts: list[dict[str, Any]]) -> Table:
    """One row per member: who, and when the message was delivered, read and played."""
    total = len(receipts)
    counts = {
        kind: sum(1 for r in receipts if r.get(f"{kind}_at")) for kind in ("delivered", "read")
    }
    table = Table(
        box=None,
        header_style="bold",
        caption=f"Read by {counts['read']} of {total}, delivered to {counts['delivered']} "
        f"of {total}.",
        caption_justify="left",
    )
    table.add_column("Member", no_wrap=True)
    table.add_column("Name")
    for title in ("Delivered", "Read", "Played"):
        table.add_column(title, no_wrap=True)
    for r in receipts:
        table.add_row(
            r["handle"],
            Text(str(r.get("display_name") or "")),
            _local_time(r.get("delivered_at")),
            _local_time(r.get("read_at")),
            _local_time(r.get("played_at")),
        )
    return table
