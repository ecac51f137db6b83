"""Client commands that find what to read or hear: `voxbox search` (texts and what was said in
voice and audio messages) and `voxbox inbox` (the voice messages not played yet)."""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.text import Text

from voxbox.cli import output as ui
from voxbox.cli.client_commands import chat_label, message_preview, transcript_line
from voxbox.client.http import VoxboxAPIError, VoxboxClient
from voxbox.client.resolve import resolve_chat


def register(app: typer.Typer) -> None:
    """Add the commands search and inbox."""
    app.command("search")(search)
    app.command("inbox")(inbox)


HIGHLIGHT = "bold yellow"  # the matched words in a snippet


class SearchKind(enum.StrEnum):
    """The ``--kind`` choices of ``voxbox search``."""

    text = "text"
    voice = "voice"
    audio = "audio"


def clock(ms: int) -> str:
    """``m:ss`` of a time into a recording, rounded down: playing from there hears the word."""
    seconds = ms // 1000
    return f"{seconds // 60}:{seconds % 60:02d}"


def local_time(value: str) -> str:
    """An API time as the local date and time, to the minute."""
    return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M")


def before_time(value: str | None) -> str | None:
    """``--before`` as an ISO 8601 time with an offset: a date or a date and time as typed,
    taken in the local time zone unless it names one."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date (2026-12-01) or a date and time (2026-12-01T18:30)",
            param_hint="--before",
        ) from None
    if when.tzinfo is None:
        when = when.astimezone()  # a naive time is the local one
    return when.isoformat()


def describe_hit(hit: Mapping[str, Any], chat: str) -> Text:
    """Two lines for a search hit: ``[chat] sender  when  (voice message at m:ss)  id``, then the
    snippet, indented, with its matched words highlighted."""
    line = Text()
    line.append(f"[{chat}] ", style="bold")
    line.append(str(hit.get("sender_name") or hit.get("sender")), style="cyan")
    line.append(f"  {local_time(hit['created_at'])}", style="dim")
    kind = hit.get("kind")
    if kind in ("voice", "audio"):
        what = "voice message" if kind == "voice" else "audio"
        offset = hit.get("offset_ms")
        line.append(f"  {what}" + (f" at {clock(offset)}" if offset is not None else ""))
    line.append(f"  {hit['message_id']}", style="dim")
    snippet = Text(" ".join(str(hit.get("snippet") or "").splitlines()))
    for start, end in hit.get("highlights") or []:
        snippet.stylize(HIGHLIGHT, start, end)
    line.append("\n  ").append_text(snippet)
    return line


def chat_names(
    client: VoxboxClient, chat_ids: set[str], me: str, chats: list[dict[str, Any]]
) -> dict[str, str]:
    """How each chat is named to ``me``; a chat one can no longer fetch is named by its id."""
    known = {chat["id"]: chat for chat in chats}
    for chat_id in chat_ids - known.keys():
        with contextlib.suppress(VoxboxAPIError):
            known[chat_id] = client.chat(chat_id)
    return {
        chat_id: chat_label(known[chat_id], me) if chat_id in known else chat_id
        for chat_id in chat_ids
    }


def search(
    query: Annotated[
        list[str],
        typer.Argument(
            help="The words to find (quotes not needed). Each must start a word of the message, "
            "in any case, accents or not: 'umbrel' finds 'Umbrella'.",
            show_default=False,
        ),
    ],
    chat: Annotated[
        str | None,
        typer.Option(
            "--chat",
            help="Only in this chat: 'self', a chat id, a group's exact title, or the handle "
            "of someone you have a direct chat with.",
            show_default=False,
        ),
    ] = None,
    kind: Annotated[
        SearchKind | None,
        typer.Option(
            "--kind", help="Only texts, voice messages or audio files.", show_default=False
        ),
    ] = None,
    before: Annotated[
        str | None,
        typer.Option(
            "--before",
            metavar="TIME",
            help="Only messages sent before this time: a date (2026-12-01) or a date and time "
            "(2026-12-01T18:30), in your time zone unless it names one (Z, +01:00).",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            min=1,
            help="Show at most this many (up to 50, unless the server is set otherwise).",
        ),
    ] = 20,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the server's JSON instead of text.")
    ] = False,
) -> None:
    """Find messages by what was written or said: texts, and the transcripts of voice and audio
    messages, in every chat you can see.

    Every word must be in the message. The best matches come first, each with its chat, sender,
    time and id, then the words around the match with the matched words highlighted.

    A hit in a voice or audio message says where the words are said in it, e.g. 'at 1:05'.

    When nothing matches, nothing is printed and the exit code is still 0.
    """
    since = before_time(before)
    credentials = ui.load_login()
    with ui.reporting_errors(), ui.client_for(credentials) as client:
        chat_id = resolve_chat(client, chat, create=False)["id"] if chat is not None else None
        found = client.search(
            " ".join(query),
            chat_id=chat_id,
            kind=kind.value if kind is not None else None,
            before=since,
            limit=limit,
        )
        if as_json:
            ui.print_json(found, indent=2)
            return
        hits: list[dict[str, Any]] = found["results"]
        chats = client.chats()["chats"] if hits else []
        labels = chat_names(client, {hit["chat_id"] for hit in hits}, credentials.handle, chats)
        for hit in hits:
            ui.out.print(describe_hit(hit, labels[hit["chat_id"]]), soft_wrap=True)
    if not hits:
        ui.err.print(f"No messages match {' '.join(query)!r}.", soft_wrap=True, markup=False)
    elif found.get("has_more"):
        ui.err.print(
            f"More messages match than these {len(hits)}: narrow the search (--chat, --kind, "
            "--before) or raise --limit.",
            style="dim",
            soft_wrap=True,
        )


def inbox(
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="List at most this many (the oldest).")
    ] = 200,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the server's JSON instead of text.")
    ] = False,
) -> None:
    """List the voice messages others sent you that you have not played yet, across all your
    chats, oldest first, each with what is said in it once its transcript is ready.

    'voxbox download ID' saves one to play. View-once messages are not listed.
    """
    credentials = ui.load_login()
    with ui.reporting_errors(), ui.client_for(credentials) as client:
        data = client.inbox(limit=limit)
        if as_json:
            ui.print_json(data, indent=2)
            return
        messages: list[dict[str, Any]] = data["messages"]
        chat_ids = {m["chat_id"] for m in messages}
        chats = client.chats()["chats"] if messages else []
        labels = chat_names(client, chat_ids, credentials.handle, chats)
    for m in messages:
        line = Text()
        line.append(f"[{labels[m['chat_id']]}] ", style="bold")
        line.append(str(m.get("sender_name") or m["sender"]), style="cyan")
        line.append(f"  {local_time(m['created_at'])}", style="dim")
        line.append(f"  {message_preview(m)}")
        line.append(f"  {m['id']}", style="dim")
        said = transcript_line(m)
        if said is not None:
            line.append("\n").append_text(said)
        ui.out.print(line, soft_wrap=True)
    if not messages:
        ui.err.print("No unplayed voice messages.")
