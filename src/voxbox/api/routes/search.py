"""Search by what was written or said, and the voice inbox."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from voxbox.api.deps import B, CurrentUser
from voxbox.core import search as search_core
from voxbox.core.search import SearchOut
from voxbox.core.views import MessageOut

router = APIRouter(tags=["search"])


@router.get("/search")
async def search(
    b: B,
    user: CurrentUser,
    q: Annotated[str, Query(min_length=1, max_length=search_core.MAX_QUERY_CHARS)],
    chat_id: Annotated[str | None, Query(max_length=64)] = None,
    kind: Literal["text", "voice", "audio"] | None = None,
    before: datetime | None = None,
    # At most limits.search_results_max, default 20; offset at most limits.search_offset_max
    # (both in the schema).
    limit: Annotated[int | None, Query(ge=1)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> SearchOut:
    """Texts and transcripts the caller may see, best match first. Every word of `q` must
    start a word of the message (any case, accents or not). `before`: sent before this time.
    A hit in a voice or audio message has `offset_ms`, where its first matched word is said.
    The next page: `offset` plus `limit`, while `has_more`."""
    return await search_core.search(
        b, user, q, chat_id=chat_id, kind=kind, before=before, limit=limit, offset=offset
    )


class InboxOut(BaseModel):
    messages: list[MessageOut]


@router.get("/inbox")
async def inbox(b: B, user: CurrentUser, limit: Annotated[int, Query(ge=1)] = 200) -> InboxOut:
    """The caller's unplayed voice messages across chats, oldest first (not view-once ones);
    `limit` at most limits.page_max, its default."""
    return InboxOut(messages=await search_core.inbox(b, user, limit))
