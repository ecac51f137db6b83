"""Turning what a person types for "which chat" into a chat."""

from __future__ import annotations

import re
from typing import Any

from voxbox.client.http import VoxboxAPIError, VoxboxClient, VoxboxError

_HANDLE = re.compile(r"[a-z0-9_.]{3,32}")


class ChatRefError(VoxboxError):
    """A chat reference matches no chat, or more than one."""


def resolve_chat(client: VoxboxClient, ref: str, *, create: bool = True) -> dict[str, Any]:
    """The chat that ``ref`` names for the caller, tried in this order:

    1. ``self`` or ``me``: the caller's self chat;
    2. the id of one of the caller's chats;
    3. the exact title of one of the caller's groups;
    4. a user handle (``@`` prefix optional): the direct chat with that user, created if needed
       (with ``create=False``, only an existing one: for a command that only reads).

    ``@name`` skips steps 1-3, for a user whose handle is also a group title or ``self``.
    Raises :class:`ChatRefError` when nothing matches or a title is shared by several groups.
    """
    chats: list[dict[str, Any]] = []
    if not ref.startswith("@") or not create:
        chats = client.chats()["chats"]
    if not ref.startswith("@"):
        if ref.lower() in ("self", "me"):
            for chat in chats:
                if chat["kind"] == "self":
                    return chat
            raise ChatRefError("No self chat", "the server listed no chat of kind 'self'")
        for chat in chats:
            if chat["id"] == ref:
                return chat
        groups = [c for c in chats if c["kind"] == "group" and c["title"] == ref]
        if len(groups) == 1:
            return groups[0]
        if groups:
            ids = ", ".join(c["id"] for c in groups)
            raise ChatRefError("Ambiguous chat", f"{len(groups)} groups are titled {ref!r}: {ids}")

    handle = ref.removeprefix("@").lower()
    if _HANDLE.fullmatch(handle):
        if not create:
            # As the server does, naming oneself names one's self chat (whose only member is
            # oneself), which comes before the direct chats oneself is also a member of.
            with_handle = [c for c in chats if handle in {m["handle"] for m in c["members"]}]
            for kind in ("self", "direct"):
                for chat in with_handle:
                    if chat["kind"] == kind:
                        return chat
            raise ChatRefError("Unknown chat", f"you have no chat with {handle!r}")
        try:
            return client.create_direct(handle)
        except VoxboxAPIError as exc:
            if exc.status != 404:
                raise
    raise ChatRefError("Unknown chat", f"no chat id, group title or user handle matches {ref!r}")
