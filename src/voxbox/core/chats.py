"""Chats: direct, group and self chats, membership, and who may see a chat.

Every membership change costs a fixed number of statements, whatever the number of members:
members are inserted in one statement, each member's view of the chat is loaded for all of them
at once (``load_chat_for``), and the events go to the log in one ``log_events`` call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

from sqlalchemy import Table, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from voxbox.core.access import access_chat, active_member_ids, check_active
from voxbox.core.backends import Backends
from voxbox.core.errors import Conflict, Forbidden, Invalid, NotFound
from voxbox.core.events import EventType, NewEvent, log_events
from voxbox.core.principal import Principal
from voxbox.core.views import (
    ChatOut,
    MemberOut,
    MemberRemovedOut,
    load_chat,
    load_chat_for,
    load_chats,
    new_chat_view,
)
from voxbox.db.models import Chat, Member, User
from voxbox.ids import new_id
from voxbox.timeutil import utcnow

# Members go in with one Core statement: the ORM's bulk path costs more than the insert.
MEMBERS = cast(Table, Member.__table__)
SELF_TITLE = "Message yourself"
MAX_TITLE = 128


async def _user_by_handle(session: AsyncSession, handle: str) -> User:
    user = await session.scalar(select(User).where(User.handle == handle.strip().lower()))
    if user is None:
        raise NotFound(f"No user {handle!r}.")
    return user


def _new_chat(kind: str, title: str | None, unique_key: str | None) -> Chat:
    now = utcnow()
    return Chat(
        id=new_id(),
        kind=kind,
        title=title,
        unique_key=unique_key,
        created_at=now,
        updated_at=now,
    )


def _marker() -> str:
    """A membership boundary: sorts after every message id made so far (ids are time-sortable)."""
    return new_id()


async def _do_create_chat(
    session: AsyncSession, chat: Chat, members: Sequence[tuple[str, str, str, str]]
) -> ChatOut:
    """Insert a new chat and its members ``(user id, handle, display name, role)``, and log
    ``chat.created`` for them: one view, the same for all (no messages yet), logged once.

    Runs inside a write transaction; the members' users exist.
    """
    session.add(chat)
    await session.flush()
    marker = _marker()
    await session.execute(
        insert(MEMBERS),
        [
            {"chat_id": chat.id, "user_id": uid, "role": role, "joined_id": marker}
            for uid, _, _, role in members
        ],
    )
    view = new_chat_view(
        chat,
        [
            MemberOut(handle=handle, display_name=name, role=role)
            for _, handle, name, role in members
        ],
    )
    await log_events(session, [NewEvent([m[0] for m in members], "chat.created", view)])
    return view


def _events(type: EventType, views: Mapping[str, ChatOut]) -> list[NewEvent]:
    """One event per distinct view: users who see the chat alike share one logged payload."""
    groups: dict[int, tuple[ChatOut, list[str]]] = {}
    for user_id, view in views.items():
        groups.setdefault(id(view), (view, []))[1].append(user_id)
    return [NewEvent(user_ids, type, view) for view, user_ids in groups.values()]


async def do_create_self_chat(session: AsyncSession, user: User) -> Chat:
    """The user's "Message yourself" chat. Runs inside the registering transaction."""
    chat = _new_chat("self", SELF_TITLE, f"self:{user.id}")
    await _do_create_chat(session, chat, [(user.id, user.handle, user.display_name, "admin")])
    return chat


async def list_chats(b: Backends, user: Principal) -> list[ChatOut]:
    """Every chat the user is or was a member of, newest activity first.

    A fixed number of queries, whatever the number of chats and members (see load_chat_views).
    """
    async with b.read() as session:
        chats = await session.scalars(
            select(Chat)
            .join(Member, Member.chat_id == Chat.id)
            .where(Member.user_id == user.id)
            .order_by(Chat.updated_at.desc(), Chat.id.desc())
        )
        return await load_chats(session, user.id, list(chats))


async def get_chat(b: Backends, user: Principal, chat_id: str) -> ChatOut:
    async with b.read() as session:
        chat, _ = await access_chat(session, user.id, chat_id)
        return await load_chat(session, user.id, chat)


async def create_direct(b: Backends, user: Principal, handle: str) -> tuple[ChatOut, bool]:
    """The direct chat between user and handle: the existing one (False) or a new one (True).

    Naming oneself gives one's self chat.
    """
    wanted = handle.strip().lower()
    for _attempt in range(2):
        try:
            async with b.transaction() as session:
                both = (
                    await session.execute(
                        select(User.id, User.handle, User.display_name).where(
                            or_(User.id == user.id, User.handle == wanted)
                        )
                    )
                ).all()
                other = next((row for row in both if row.handle == wanted), None)
                if other is None:
                    raise NotFound(f"No user {handle!r}.")
                key = f"self:{user.id}" if other.id == user.id else _direct_key(user.id, other.id)
                chat = await session.scalar(select(Chat).where(Chat.unique_key == key))
                if chat is not None:
                    return await load_chat(session, user.id, chat), False
                view = await _do_create_chat(
                    session,
                    _new_chat("direct", None, key),
                    [(uid, h, name, "member") for uid, h, name in both],
                )
                return view, True
        except IntegrityError:
            continue  # the other side created it at the same moment; read theirs
    raise Conflict("The chat is being created; try again.")


def _direct_key(a: str, b: str) -> str:
    return ":".join(sorted((a, b)))


async def create_group(b: Backends, user: Principal, title: str, handles: Sequence[str]) -> ChatOut:
    """A new group of user (its admin) and the users named. A fixed number of statements."""
    title = title.strip()
    if not 1 <= len(title) <= MAX_TITLE:
        raise Invalid(f"A group title has 1 to {MAX_TITLE} characters.")
    wanted = {h.strip().lower() for h in handles} - {user.handle}
    if len(wanted) + 1 > b.settings.limits.group_max_members:
        raise Invalid(f"A group has at most {b.settings.limits.group_max_members} members.")
    async with b.transaction() as session:
        rows = (
            await session.execute(
                select(User.id, User.handle, User.display_name).where(
                    or_(User.id == user.id, User.handle.in_(wanted))
                )
            )
        ).all()
        unknown = wanted - {row.handle for row in rows}
        if unknown:
            raise Invalid(f"Unknown handles: {', '.join(sorted(unknown))}.")
        return await _do_create_chat(
            session,
            _new_chat("group", title, None),
            [(uid, h, name, "admin" if uid == user.id else "member") for uid, h, name in rows],
        )


async def _access_group_as_admin(
    session: AsyncSession, user: Principal, chat_id: str
) -> tuple[Chat, Member]:
    chat, me = await access_chat(session, user.id, chat_id)
    check_active(me)
    if chat.kind != "group":
        raise Invalid("Only group chats have members to add or remove.")
    return chat, me


async def add_member(b: Backends, user: Principal, chat_id: str, handle: str) -> ChatOut:
    """Add someone to a group (group admins only). They see messages from now on.

    They get ``chat.created``; the other members ``chat.updated``, each with the chat as they
    see it. A fixed number of statements, whatever the size of the group.
    """
    async with b.transaction() as session:
        chat, me = await _access_group_as_admin(session, user, chat_id)
        if me.role != "admin":
            raise Forbidden("Only group admins add members.")
        other = await _user_by_handle(session, handle)
        existing = await session.get(Member, (chat.id, other.id))
        if existing is not None and existing.left_id is None:
            return await load_chat(session, user.id, chat)
        current = await active_member_ids(session, chat.id)
        if len(current) >= b.settings.limits.group_max_members:
            raise Invalid(f"A group has at most {b.settings.limits.group_max_members} members.")
        if existing is None:
            session.add(
                Member(chat_id=chat.id, user_id=other.id, role="member", joined_id=_marker())
            )
        else:
            # What was read before leaving is before the new join: nothing to keep.
            existing.joined_id, existing.left_id = _marker(), None
            existing.role, existing.last_read_id = "member", None
        chat.updated_at = utcnow()
        await session.flush()
        views = await load_chat_for(session, chat, [*current, other.id])
        await log_events(
            session,
            _events("chat.created", {other.id: views[other.id]})
            + _events("chat.updated", {uid: views[uid] for uid in current}),
        )
        return views[user.id]


async def remove_member(b: Backends, user: Principal, chat_id: str, handle: str) -> None:
    """Remove someone from a group (admins), or leave it (anyone, naming themselves).

    The former member keeps the history up to now. A group whose last admin leaves gets its
    longest-standing member as admin, so it is never left without one.
    """
    async with b.transaction() as session:
        chat, me = await _access_group_as_admin(session, user, chat_id)
        target = await _user_by_handle(session, handle)
        if target.id != user.id and me.role != "admin":
            raise Forbidden("Only group admins remove other members.")
        member = await session.get(Member, (chat.id, target.id))
        if member is None or member.left_id is not None:
            raise NotFound(f"{handle!r} is not a member of this chat.")
        recipients = await active_member_ids(session, chat.id)
        member.left_id = _marker()
        was_admin, member.role = member.role == "admin", "member"
        chat.updated_at = utcnow()
        events = [
            NewEvent(
                recipients,
                "member.removed",
                MemberRemovedOut(chat_id=chat.id, handle=target.handle),
            )
        ]
        if was_admin:
            await session.flush()
            events += await _promote_if_adminless(session, chat)
        await log_events(session, events)


async def _promote_if_adminless(session: AsyncSession, chat: Chat) -> list[NewEvent]:
    """Make the longest-standing member admin if no member is; the ``chat.updated`` events
    that tell the members (each their own view). Runs inside a write transaction."""
    members = list(
        await session.scalars(
            select(Member)
            .where(Member.chat_id == chat.id, Member.left_id.is_(None))
            # Members who joined together (the group's creation) in the order they registered.
            .order_by(Member.joined_id, Member.user_id)
        )
    )
    if not members or any(m.role == "admin" for m in members):
        return []
    members[0].role = "admin"
    await session.flush()
    return _events("chat.updated", await load_chat_for(session, chat, [m.user_id for m in members]))
