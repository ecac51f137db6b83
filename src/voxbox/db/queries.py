"""Small query helpers that differ by dialect."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase


def insert_ignoring_conflicts(session: AsyncSession, model: type[DeclarativeBase]) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` for this session's dialect."""
    module: Any = sqlite if dialect_name(session) == "sqlite" else postgresql
    return module.insert(model).on_conflict_do_nothing()


def dialect_name(session: AsyncSession) -> str:
    return session.get_bind().dialect.name
