"""Chats: direct, group and self chats, membership, and who may see a chat."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from voxbox.core.access import access_chat, active_member_ids, check_active
from voxbox.core.backends import Backends
from voxbox.core.errors import Conflict, Forbidden, Invalid, NotFound
from voxbox.core.events import NewEvent, log_event, log_events
from voxbox.core.views import ChatOut, MemberRemovedOut, load_chat, load_chats
from voxbox.db.models import Chat, Member, User
from voxbox.ids import new_id
from voxbox.timeutil import utcnow

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


async def _announce(
    session: AsyncSession, chat: Chat, created_for: Sequence[str], updated_for: Sequence[str] = ()
) -> None:
    """Log chat.created / chat.updated, each user getting the chat as they see it.

    All in one batch, so the users' rows are locked once and in order.
    """
    await session.flush()
    await log_events(
        session,
        [NewEvent([u], "chat.created", await load_chat(session, u, chat)) for u in created_for]
        + [NewEvent([u], "chat.updated", await load_chat(session, u, chat)) for u in updated_for],
    )


async def do_create_self_chat(session: AsyncSession, user: User) -> Chat:
    """The user's "Message yourself" chat. Runs inside the registering transaction."""
    chat = _new_chat("self", SELF_TITLE, f"self:{user.id}")
    session.add(chat)
    session.add(Member(chat_id=chat.id, user_id=user.id, role="admin", joined_id=_marker()))
    await _announce(session, chat, [user.id])
    return chat


def _marker() -> str:
    """A membership boundary: sorts after every message id made so far (ids are time-sortable)."""
    return new_id()


async def list_chats(b: Backends, user: User) -> list[ChatOut]:
    """Every chat the user is or was a member of, newest activity first."""
    async with b.read() as session:
        chats = await session.scalars(
            select(Chat)
            .join(Member, Member.chat_id == Chat.id)
            .where(Member.user_id == user.id)
            .order_by(Chat.updated_at.desc(), Chat.id.desc())
        )
        return await load_chats(session, user.id, list(chats))


async def get_chat(b: Backends, user: User, chat_id: str) -> ChatOut:
    async with b.read() as session:
        chat, _ = await access_chat(session, user.id, chat_id)
        return await load_chat(session, user.id, chat)


async def create_direct(b: Backends, user: User, handle: str) -> tuple[ChatOut, bool]:
    """The direct chat between user and handle: the existing one (False) or a new one (True).

    Naming oneself gives one's self chat.
    """
    for _attempt in range(2):
        try:
            async with b.transaction() as session:
                other = await _user_by_handle(session, handle)
                key = f"self:{user.id}" if other.id == user.id else _direct_key(user.id, other.id)
                chat = await session.scalar(select(Chat).where(Chat.unique_key == key))
                if chat is not None:
                    return await load_chat(session, user.id, chat), False
                chat = _new_chat("direct", None, key)
                session.add(chat)
                marker = _marker()
                for uid in (user.id, other.id):
                    session.add(
                        Member(chat_id=chat.id, user_id=uid, role="member", joined_id=marker)
                    )
                await _announce(session, chat, [user.id, other.id])
                return await load_chat(session, user.id, chat), True
        except IntegrityError:
            continue  # the other side created it at the same moment; read theirs
    raise Conflict("The chat is being created; try again.")


def _direct_key(a: str, b: str) -> str:
    return ":".join(sorted((a, b)))


async def create_group(b: Backends, user: User, title: str, handles: Sequence[str]) -> ChatOut:
    title = title.strip()
    if not 1 <= len(title) <= MAX_TITLE:
        raise Invalid(f"A group title has 1 to {MAX_TITLE} characters.")
    wanted = {h.strip().lower() for h in handles} - {user.handle}
    if len(wanted) + 1 > b.settings.limits.group_max_members:
        raise Invalid(f"A group has at most {b.settings.limits.group_max_members} members.")
    async with b.transaction() as session:
        users = list(await session.scalars(select(User).where(User.handle.in_(wanted))))
        unknown = wanted - {u.handle for u in users}
        if unknown:
            raise Invalid(f"Unknown handles: {', '.join(sorted(unknown))}.")
        chat = _new_chat("group", title, None)
        session.add(chat)
        marker = _marker()
        session.add(Member(chat_id=chat.id, user_id=user.id, role="admin", joined_id=marker))
        for other in users:
            session.add(Member(chat_id=chat.id, user_id=other.id, role="member", joined_id=marker))
        await _announce(session, chat, [user.id, *(u.id for u in users)])
        return await load_chat(session, user.id, chat)


async def _access_group_as_admin(
    session: AsyncSession, user: User, chat_id: str
) -> tuple[Chat, Member]:
    chat, me = await access_chat(session, user.id, chat_id)
    check_active(me)
    if chat.kind != "group":
        raise Invalid("Only group chats have members to add or remove.")
    return chat, me


async def add_member(b: Backends, user: User, chat_id: str, handle: str) -> ChatOut:
    """Add someone to a group (group admins only). They see messages from now on."""
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
            existing.joined_id, existing.left_id, existing.role = _marker(), None, "member"
        chat.updated_at = utcnow()
        await _announce(session, chat, [other.id], current)
        return await load_chat(session, user.id, chat)


async def remove_member(b: Backends, user: User, chat_id: str, handle: str) -> None:
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
        await log_event(
            session,
            recipients,
            "member.removed",
            MemberRemovedOut(chat_id=chat.id, handle=target.handle),
        )
        if was_admin:
            await session.flush()
            await _promote_if_adminless(session, chat)


async def _promote_if_adminless(session: AsyncSession, chat: Chat) -> None:
    members = list(
        await session.scalars(
            select(Member)
            .where(Member.chat_id == chat.id, Member.left_id.is_(None))
            .order_by(Member.joined_id)
        )
    )
    if members and all(m.role != "admin" for m in members):
        members[0].role = "admin"
        await _announce(session, chat, [], [m.user_id for m in members])
