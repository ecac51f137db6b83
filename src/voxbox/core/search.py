"""Search: find messages by what was written or said, and the voice inbox.

Search runs over ``search_docs`` (texts, and transcripts once ready; kept by migration 0008's
triggers and the transcription job) with SQLite's FTS5 index or PostgreSQL's text search. Each
word of the query must match the start of a word, in any case and with or without accents.
Hits are ranked (bm25 / ts_rank) and only what the caller may see is searched (``can_see``).
Snippets and their highlights are cut here, in Python, from the same words on both backends; a
hit in a transcript carries the time of its first matched word.
"""

from __future__ import annotations

import json
import re
import unicodedata
from bisect import bisect_right
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, column, func, literal_column, select, table

from voxbox.core.access import can_see, played_by
from voxbox.core.backends import Backends
from voxbox.core.errors import Invalid, RateLimited
from voxbox.core.principal import Principal
from voxbox.core.views import MessageOut, Timestamp, load_messages
from voxbox.db.models import Media, Member, Message, SearchDoc, Transcript, User

MAX_QUERY_CHARS = 200
MAX_TERMS = 8
_WORD = re.compile(r"\w+")
_SNIPPET_BEFORE = 8  # words of context before the first match
_SNIPPET_WORDS = 30  # words a snippet holds at most


class SearchHit(BaseModel):
    message_id: str
    chat_id: str
    kind: Literal["text", "voice", "audio"]
    sender: str
    # The sender's name for a kept message whose sender is not a user here.
    sender_name: str | None
    # Plain text (never HTML) around the match; ``highlights`` are the [start, end) character
    # ranges of matched words in it.
    snippet: str
    highlights: list[tuple[int, int]]
    # In a voice or audio message: where its first matched word is said.
    offset_ms: int | None
    created_at: Timestamp


class SearchOut(BaseModel):
    results: list[SearchHit]
    has_more: bool


def _fold(word: str) -> str:
    """Lower case without accents, as the index compares words."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def query_terms(q: str) -> list[str]:
    """The words of a query, folded, each at most once, in order."""
    if len(q) > MAX_QUERY_CHARS:
        raise Invalid(f"A search is at most {MAX_QUERY_CHARS} characters.")
    terms = list(dict.fromkeys(_fold(w) for w in _WORD.findall(q)))
    if not terms:
        raise Invalid("Search for at least one word.")
    if len(terms) > MAX_TERMS:
        raise Invalid(f"A search has at most {MAX_TERMS} words.")
    return terms


async def search(
    b: Backends,
    user: Principal,
    q: str,
    *,
    chat_id: str | None = None,
    kind: Literal["text", "voice", "audio"] | None = None,
    before: datetime | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> SearchOut:
    """Hits ``offset`` to ``offset + limit`` (default 20) in rank order; at most
    ``limits.searches_per_minute`` searches a minute per user."""
    terms = query_terms(q)
    limits = b.settings.limits
    limit = min(20, limits.search_results_max) if limit is None else limit
    if not 1 <= limit <= limits.search_results_max:
        raise Invalid(f"limit is 1 to {limits.search_results_max}.")
    if not 0 <= offset <= limits.search_offset_max:
        raise Invalid(f"offset is 0 to {limits.search_offset_max}.")
    count, retry = await b.limiter.hit(f"search:{user.id}", 60)
    if count > limits.searches_per_minute:
        raise RateLimited(
            f"Too many searches: at most {limits.searches_per_minute} a minute.", retry
        )
    async with b.read() as session:
        mine = select(Member.chat_id).where(Member.user_id == user.id)
        if chat_id is not None:
            mine = mine.where(Member.chat_id == chat_id)
        chats = list(await session.scalars(mine))
        if not chats:
            return SearchOut(results=[], has_more=False)
        stmt = _matching(b.db.is_sqlite, terms, chats).where(
            Message.deleted_at.is_(None),
            Message.view_once.is_(False),
            can_see(user.id),
        )
        if kind is not None:
            stmt = stmt.where(Message.kind == kind)
        if before is not None:
            stmt = stmt.where(Message.created_at < before)
        rows = (await session.execute(stmt.offset(offset).limit(limit + 1))).all()
        media_ids = {row.media_id for row in rows[:limit] if row.media_id}
        words: dict[str, str | None] = {}
        if media_ids:
            found = await session.execute(
                select(Transcript.media_id, Transcript.words).where(
                    Transcript.media_id.in_(media_ids)
                )
            )
            words = dict(found.tuples().all())
    hits = []
    for row in rows[:limit]:
        snippet, highlights, first = cut_snippet(row.body, terms)
        timed = words.get(row.media_id) if row.media_id else None
        hits.append(
            SearchHit(
                message_id=row.message_id,
                chat_id=row.chat_id,
                kind=row.kind,
                sender=row.handle,
                sender_name=row.sender_name,
                snippet=snippet,
                highlights=highlights,
                offset_ms=None if timed is None else offset_of(row.body, json.loads(timed), first),
                created_at=row.created_at,
            )
        )
    return SearchOut(results=hits, has_more=len(rows) > limit)


# message_id, body, chat_id, kind, media_id, sender_name, created_at, sender handle
_Hits = Select[str, str, str, str, str | None, str | None, datetime, str]
_FTS = table("search_fts", column("rowid"))  # SQLite's FTS5 index of search_docs (migration 0008)


def _matching(sqlite: bool, terms: list[str], chats: list[str]) -> _Hits:
    """Documents of ``chats`` matching every term, best first, with what a hit shows."""
    columns = (
        SearchDoc.message_id,
        SearchDoc.body,
        Message.chat_id,
        Message.kind,
        Message.media_id,
        Message.sender_name,
        Message.created_at,
        User.handle,
    )
    joined = select(*columns).join(Message, Message.id == SearchDoc.message_id)
    joined = joined.join(User, User.id == Message.sender_id)
    if sqlite:
        # Each term quoted (no FTS5 syntax gets through) and matched as a prefix; the chats are
        # in the index too, so a common word costs what it costs in the caller's chats only.
        words = " AND ".join(_quoted(term) + _prefix(term, "*") for term in terms)
        where = " OR ".join(_quoted(chat) for chat in chats)
        fts: ColumnElement[Any] = literal_column("search_fts")
        joined = joined.join(_FTS, _FTS.c.rowid == SearchDoc.id).where(
            fts.op("MATCH")(f"body : ({words}) AND chat_id : ({where})")
        )
        return joined.order_by(func.bm25(fts, 1.0, 0.0), Message.id.desc())
    query = func.to_tsquery(
        "simple", " & ".join(_quoted(term, "'") + _prefix(term, ":*") for term in terms)
    )
    vector = func.to_tsvector("simple", func.voxbox_fold(SearchDoc.body))  # its GIN index
    return joined.where(vector.op("@@")(query), SearchDoc.chat_id.in_(chats)).order_by(
        func.ts_rank(vector, query).desc(), Message.id.desc()
    )


def _prefix(term: str, mark: str) -> str:
    """A term matches the start of words, but a single letter only itself: as a prefix it is
    most of the index (``a*``), slow and of no use."""
    return mark if len(term) > 1 else ""


def _matches(word: str, term: str) -> bool:
    """Whether a folded word is one the index matched for ``term`` (see ``_prefix``)."""
    return word.startswith(term) if len(term) > 1 else word == term


def _quoted(word: str, quote: str = '"') -> str:
    return quote + word.replace(quote, quote * 2) + quote


def _words(body: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), _fold(m.group())) for m in _WORD.finditer(body)]


def cut_snippet(body: str, terms: list[str]) -> tuple[str, list[tuple[int, int]], int]:
    """Up to ``_SNIPPET_WORDS`` words around the first match, the ranges of the matched words
    in it, and where in ``body`` the first match starts."""
    words = _words(body)
    matched = [i for i, (_, _, w) in enumerate(words) if any(_matches(w, t) for t in terms)]
    first = matched[0] if matched else 0
    lo = max(0, first - _SNIPPET_BEFORE)
    hi = min(len(words), lo + _SNIPPET_WORDS)
    if not words:
        return "", [], 0
    start, end = words[lo][0], words[hi - 1][1]
    prefix = "…" if lo > 0 else ""
    suffix = "…" if hi < len(words) else ""
    shift = len(prefix) - start
    highlights = [(words[i][0] + shift, words[i][1] + shift) for i in matched if lo <= i < hi]
    return prefix + body[start:end] + suffix, highlights, words[first][0]


def offset_of(body: str, timed: list[dict[str, int | str]], at: int) -> int | None:
    """When the transcript word holding character ``at`` of ``body`` (the words joined by
    spaces) is said."""
    if not timed:
        return None
    starts, position = [], 0
    for word in timed:
        starts.append(position)
        position += len(str(word["w"])) + 1
    index = max(0, bisect_right(starts, at) - 1)
    return int(timed[index]["start_ms"])


async def inbox(b: Backends, user: Principal, limit: int | None = None) -> list[MessageOut]:
    """The voice messages the user received and has not played, across chats, oldest first:
    ready to play (processing ones wait), not deleted, and not view-once (one of those is
    opened on purpose, not played by a queue)."""
    limit = b.settings.limits.page_max if limit is None else limit
    if not 1 <= limit <= b.settings.limits.page_max:
        raise Invalid(f"limit is 1 to {b.settings.limits.page_max}.")
    async with b.read() as session:
        messages = list(
            await session.scalars(
                select(Message)
                .join(Media, Media.id == Message.media_id)
                .where(
                    Message.chat_id.in_(select(Member.chat_id).where(Member.user_id == user.id)),
                    Message.kind == "voice",
                    Message.sender_id != user.id,
                    Message.deleted_at.is_(None),
                    Message.view_once.is_(False),
                    Media.state == "ready",
                    can_see(user.id),
                    ~played_by(user.id),
                )
                .order_by(Message.id)
                .limit(limit)
            )
        )
        return await load_messages(session, messages, user.id)
