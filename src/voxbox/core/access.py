"""Who may see what: fetch a chat or message only for a user allowed to see it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voxbox.core.errors import Forbidden, NotFound
from voxbox.db.models import Chat, HiddenMessage, Member, Message


async def access_chat(session: AsyncSession, user_id: str, chat_id: str) -> tuple[Chat, Member]:
    """The chat and the caller's membership (current or former); NotFound for anyone else."""
    row = (
        await session.execute(
            select(Chat, Member)
            .join(Member, Member.chat_id == Chat.id)
            .where(Chat.id == chat_id, Member.user_id == user_id)
        )
    ).first()
    if row is None:
        raise NotFound("No such chat.")
    return row[0], row[1]


def check_active(member: Member) -> None:
    if member.left_id is not None:
        raise Forbidden("You are no longer a member of this chat.")


async def active_member_ids(session: AsyncSession, chat_id: str) -> list[str]:
    rows = await session.scalars(
        select(Member.user_id).where(Member.chat_id == chat_id, Member.left_id.is_(None))
    )
    return list(rows)


async def access_message(
    session: AsyncSession, user_id: str, message_id: str
) -> tuple[Message, Chat, Member]:
    """A message the user may see (member of its chat within their window, not hidden)."""
    row = (
        await session.execute(
            select(Message, Chat, Member)
            .join(Chat, Chat.id == Message.chat_id)
            .join(Member, (Member.chat_id == Message.chat_id) & (Member.user_id == user_id))
            .where(Message.id == message_id)
        )
    ).first()
    if row is None:
        raise NotFound("No such message.")
    message, chat, member = row
    hidden = await session.get(HiddenMessage, (user_id, message_id))
    if (
        hidden is not None
        or message.id <= member.joined_id
        or (member.left_id is not None and message.id > member.left_id)
    ):
        raise NotFound("No such message.")
    return message, chat, member


async def access_chat_members(
    session: AsyncSession, user_id: str, chat_id: str
) -> tuple[Chat, Member, list[str]]:
    """Like access_chat, plus the ids of the chat's current members, in one query."""
    rows = (
        await session.execute(
            select(Chat, Member).join(Member, Member.chat_id == Chat.id).where(Chat.id == chat_id)
        )
    ).all()
    mine = [member for _, member in rows if member.user_id == user_id]
    if not mine:
        raise NotFound("No such chat.")
    active = [member.user_id for _, member in rows if member.left_id is None]
    return rows[0][0], mine[0], active
