"""Who may see what: the one visibility rule, and fetching a chat or message by it.

A user sees a message when they are or were a member of its chat, it was posted within their
membership (after they joined, up to when they left), and they did not delete it for
themselves. Its media they see too, unless the message was deleted or is a view-once voice
message they received and already played. Every query that shows messages or media uses
``can_see`` and ``view_once_spent``; nothing else restates the rule.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, SQLColumnExpression, and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.orm.util import AliasedClass

from voxbox.core.errors import Forbidden, NotFound
from voxbox.db.models import Chat, HiddenMessage, Media, Member, Message, Receipt


def within_membership(message_id: str | SQLColumnExpression[str]) -> ColumnElement[bool]:
    """True for memberships (rows of ``Member``) the message was posted within: after the
    member joined, up to when they left. ``membership_bounds`` states the same window for
    index scans: change both together."""
    return and_(
        Member.joined_id < message_id,
        or_(Member.left_id.is_(None), Member.left_id >= message_id),
    )


# Sorts after every id, in every collation (ids are 26 characters of Crockford base32).
_AFTER_ALL_IDS = "Z" * 26


def membership_bounds(
    member: type[Member] | AliasedClass[Member],
) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """The window of ``within_membership`` as bounds on ``Message.id`` (no OR), so an index on
    message ids can be range-scanned. They only narrow a scan; ``can_see`` still decides."""
    return (
        Message.id > member.joined_id,
        Message.id <= func.coalesce(member.left_id, _AFTER_ALL_IDS),
    )


def can_see(user_id: str | SQLColumnExpression[str]) -> ColumnElement[bool]:
    """True for the messages (rows of ``Message``) the user may see.

    ``user_id`` may be a column of the enclosing query (one statement for many viewers).
    """
    member = (
        exists()
        .where(
            Member.chat_id == Message.chat_id,
            Member.user_id == user_id,
            within_membership(Message.id),
        )
        .correlate_except(Member)
    )
    hidden = (
        exists()
        .where(HiddenMessage.user_id == user_id, HiddenMessage.message_id == Message.id)
        .correlate_except(HiddenMessage)
    )
    return and_(member, ~hidden)


async def current_viewers(session: AsyncSession, message: Message) -> list[str]:
    """The current members of the message's chat who may see it: who gets an event about it
    (not a member who joined after it, nor one who deleted it for themselves)."""
    viewer = aliased(Member, name="viewer")  # not can_see's own Member
    return list(
        await session.scalars(
            select(viewer.user_id)
            .join(Message, Message.chat_id == viewer.chat_id)
            .where(Message.id == message.id, viewer.left_id.is_(None), can_see(viewer.user_id))
        )
    )


def visible_to(member: Member) -> list[ColumnElement[bool]]:
    """The messages of member's chat that member may see."""
    return [Message.chat_id == member.chat_id, can_see(member.user_id)]


def played_by(user_id: str | SQLColumnExpression[str]) -> ColumnElement[bool]:
    """True for messages the user played (their played receipt is set).

    ``user_id`` may be a column of the enclosing query, as for ``can_see``.
    """
    return (
        exists()
        .where(
            Receipt.message_id == Message.id,
            Receipt.user_id == user_id,
            Receipt.played_at.is_not(None),
        )
        .correlate_except(Receipt)
    )


def view_once_spent(user_id: str | SQLColumnExpression[str]) -> ColumnElement[bool]:
    """True for view-once messages the user received and played: shown without their media.

    ``user_id`` may be a column of the enclosing query, as for ``can_see``.
    """
    return and_(Message.view_once.is_(True), Message.sender_id != user_id, played_by(user_id))


def may_fetch_media(user_id: str) -> ColumnElement[bool]:
    """True for media (rows of ``Media``) the user may fetch: their own upload, or the media of
    a message they can see that is not deleted and not a spent view-once."""
    shown = (
        exists()
        .where(
            Message.media_id == Media.id,
            Message.deleted_at.is_(None),
            can_see(user_id),
            ~view_once_spent(user_id),
        )
        .correlate(Media)
    )
    return or_(Media.uploader_id == user_id, shown)


def may_post_media(user_id: str) -> ColumnElement[bool]:
    """True for media the user may post (send again or forward by id): their own upload, or the
    media of a message they can see that is not deleted and not view-once. A view-once voice
    message someone sent them never becomes a normal, replayable copy."""
    shown = (
        exists()
        .where(
            Message.media_id == Media.id,
            Message.deleted_at.is_(None),
            Message.view_once.is_(False),
            can_see(user_id),
        )
        .correlate(Media)
    )
    return or_(Media.uploader_id == user_id, shown)


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
            .where(Message.id == message_id, can_see(user_id))
        )
    ).first()
    if row is None:
        raise NotFound("No such message.")
    return row[0], row[1], row[2]


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
