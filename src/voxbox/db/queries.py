"""Small query helpers that differ by dialect."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase


def insert_ignoring_conflicts(bind: AsyncSession | Connection, model: type[DeclarativeBase]) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` for this session's (or connection's) dialect."""
    module: Any = sqlite if dialect_name(bind) == "sqlite" else postgresql
    return module.insert(model).on_conflict_do_nothing()


def dialect_name(bind: AsyncSession | Connection) -> str:
    if isinstance(bind, Connection):
        return bind.dialect.name
    return bind.get_bind().dialect.name
