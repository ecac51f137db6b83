"""Chats cost a fixed number of statements, whatever the number of members or chats.

Core-level: the tests call core functions on a Backends of their own (``b``: SQLite in a
temporary data dir, or a fresh PostgreSQL database) and count what reaches the database driver.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from sqlalchemy import event

from voxbox.core import chats, messages, receipts
from voxbox.core.backends import Backends
from voxbox.core.events import events_after
from voxbox.core.principal import Principal
from voxbox.core.views import ChatOut
from voxbox.db.models import Media
from voxbox.ids import new_id
from voxbox.timeutil import utcnow

MakeUsers = Callable[[str, int], Awaitable[list[Principal]]]  # the make_users fixture (conftest.py)


class Statements:
    """Counts the statements sent to the database while active."""

    def __init__(self, b: Backends) -> None:
        self.engine = b.db.engine.sync_engine
        self.seen: list[str] = []
        self._on = False

    def _count(self, *args: Any) -> None:
        if self._on:
            self.seen.append(args[2])

    @contextlib.contextmanager
    def counting(self) -> Iterator[list[str]]:
        self.seen = []
        self._on = True
        event.listen(self.engine, "before_cursor_execute", self._count)
        try:
            yield self.seen
        finally:
            self._on = False
            event.remove(self.engine, "before_cursor_execute", self._count)


async def test_creating_a_group_is_a_fixed_number_of_statements(
    b: Backends, make_users: MakeUsers
) -> None:
    owner, *others = await make_users("m", 200)
    statements = Statements(b)
    with statements.counting() as small:
        await chats.create_group(b, owner, "few", [u.handle for u in others[:2]])
    with statements.counting() as big:
        group = await chats.create_group(b, owner, "many", [u.handle for u in others])

    assert len(big) == len(small), "\n".join(big)
    assert len(big) <= 8, "\n".join(big)
    assert len(group.members) == 200
    assert group.members[0].handle == owner.handle and group.members[0].role == "admin"
    assert group.unread_count == 0 and group.last_message is None


async def test_every_member_is_told_of_the_new_group_as_they_see_it(
    b: Backends, make_users: MakeUsers
) -> None:
    owner, *others = await make_users("n", 5)
    group = await chats.create_group(b, owner, "team", [u.handle for u in others])
    for user in (owner, *others):
        async with b.read() as session:
            logged = await _chat_events(session, user.id, "chat.created")
        assert logged[-1] == as_json(group)
        assert as_json(group) == as_json(await chats.get_chat(b, user, group.id))


async def test_listing_chats_is_a_fixed_number_of_statements(
    b: Backends, make_users: MakeUsers
) -> None:
    alone, busy, *others = await make_users("l", 12)
    (own,) = await chats.list_chats(b, alone)
    await _send(b, alone, own.id, "a note to self")
    # busy: a self chat, 9 direct chats and 40 groups of 11, each with messages in it; half
    # of the groups read.
    for other in others[:9]:
        direct, _ = await chats.create_direct(b, busy, other.handle)
        await _send(b, other, direct.id, "hi")
    for i in range(40):
        group = await chats.create_group(b, busy, f"g{i}", [u.handle for u in others])
        hello, _ = await _send(b, others[i % len(others)], group.id, f"hello {i}")
        if i % 2:
            await receipts.mark_read(b, busy, group.id, hello.id)
        await _send(b, busy, group.id, f"answer {i}")

    statements = Statements(b)
    with statements.counting() as one:
        assert len(await chats.list_chats(b, alone)) == 1
    with statements.counting() as fifty:
        listed = await chats.list_chats(b, busy)

    assert len(listed) == 50
    assert len(fifty) == len(one), "\n".join(fifty)
    assert len(fifty) <= 8, "\n".join(fifty)
    assert [c.title for c in listed[:2]] == ["g39", "g38"]
    assert listed[0].last_message is not None and listed[0].last_message.text == "answer 39"
    assert [len(c.members) for c in listed[:2]] == [11, 11]
    assert [c.unread_count for c in listed[:2]] == [0, 1]  # read up to "hello 39", not 38
    assert sum(c.unread_count for c in listed) == 9 + 20
    for chat in listed:
        assert as_json(chat) == as_json(await chats.get_chat(b, busy, chat.id))


async def test_each_member_gets_their_own_view_when_the_group_changes(
    b: Backends, make_users: MakeUsers
) -> None:
    """Adding a member tells the others the chat as each sees it: their own unread count,
    their own last message (not one they deleted for themselves), and a view-once voice
    message they played without its media."""
    admin, reader, hider, late = await make_users("v", 4)
    group = await chats.create_group(b, admin, "views", [reader.handle, hider.handle])
    await _send(b, admin, group.id, "first")
    await _send(b, admin, group.id, "second")
    voice, _ = await messages.send_message(
        b,
        admin,
        group.id,
        client_id="voice",
        kind="voice",
        media_id=await _voice_media(b, admin),
        view_once=True,
    )
    await receipts.mark_played(b, reader, voice.id)
    await receipts.mark_read(b, reader, group.id, voice.id)
    await messages.delete_message(b, hider, voice.id, "me")

    statements = Statements(b)
    with statements.counting() as seen:
        await chats.add_member(b, admin, group.id, late.handle)

    assert len(seen) <= 16, "\n".join(seen)
    expected = {
        admin.id: (voice.id, True, 0),
        reader.id: (voice.id, False, 0),  # played once: no media any more
        hider.id: (None, False, 2),  # "second" is the last they see; both unread
    }
    for user_id, (last_id, has_media, unread) in expected.items():
        async with b.read() as session:
            updated = (await _chat_events(session, user_id, "chat.updated"))[-1]
        last = updated["last_message"]
        if last_id is None:
            assert last["text"] == "second"
        else:
            assert last["id"] == last_id
        assert (last["media"] is not None, updated["unread_count"]) == (has_media, unread)
        assert len(updated["members"]) == 4
    async with b.read() as session:
        created = (await _chat_events(session, late.id, "chat.created"))[-1]
    assert created["last_message"] is None and created["unread_count"] == 0
    assert created == as_json(await chats.get_chat(b, late, group.id))
    for user in (admin, reader, hider):
        async with b.read() as session:
            updated = (await _chat_events(session, user.id, "chat.updated"))[-1]
        assert updated == as_json(await chats.get_chat(b, user, group.id))


async def test_leaving_promotes_the_longest_standing_member_for_everyone(
    b: Backends, make_users: MakeUsers
) -> None:
    admin, *others = await make_users("p", 30)
    group = await chats.create_group(b, admin, "left", [u.handle for u in others])
    statements = Statements(b)
    with statements.counting() as seen:
        await chats.remove_member(b, admin, group.id, admin.handle)

    assert len(seen) <= 14, "\n".join(seen)
    heir = others[0]  # they joined together: the first registered
    view = await chats.get_chat(b, heir, group.id)
    assert [(m.handle, m.role) for m in view.members[:1]] == [(heir.handle, "admin")]
    async with b.read() as session:
        for user in others:
            assert (await _chat_events(session, user.id, "chat.updated"))[-1] == as_json(view)


async def _voice_media(b: Backends, uploader: Principal) -> str:
    """A ready voice media of the uploader's (its blob is not needed to send it)."""
    media = Media(
        id=new_id(),
        uploader_id=uploader.id,
        kind="voice",
        state="ready",
        filename="voice.ogg",
        source_sha256="0" * 64,
        source_size=1000,
        source_content_type="audio/ogg",
        ogg_key="blobs/none",
        ogg_size=1000,
        duration_ms=1000,
        waveform="[]",
        created_at=utcnow(),
    )
    async with b.transaction() as session:
        session.add(media)
    return media.id


async def _send(b: Backends, sender: Principal, chat_id: str, text: str) -> Any:
    return await messages.send_message(
        b, sender, chat_id, client_id=f"{sender.handle}-{text}", kind="text", text=text
    )


def as_json(view: ChatOut) -> Any:
    """The chat as a client sees it (JSON)."""
    return view.model_dump(mode="json")


async def _chat_events(session: Any, user_id: str, type: str) -> list[Any]:
    out = []
    for _, frame in await events_after(session, user_id, 0, 10_000):
        body = json.loads(frame)
        if body["type"] == type:
            out.append(body["data"])
    return out
