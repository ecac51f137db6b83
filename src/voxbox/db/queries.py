"""Small query helpers that differ by dialect."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import ColumnElement, Connection, Dialect, Table, insert
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


def insert_rows(
    conn: Connection, table: Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> None:
    """Insert many rows with one driver ``executemany``: the statement is compiled once per
    dialect, and the values go to the driver as they are, so they must already be what the
    driver takes (see ``bind_value``). For the write path's large inserts (an event per member
    of a group), where SQLAlchemy's per-row parameter processing would cost more than the
    database's work."""
    conn.exec_driver_sql(_insert_sql(conn.dialect, table, columns), rows)


@functools.lru_cache(maxsize=64)
def _insert_sql(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> str:
    compiled = insert(table).compile(dialect=dialect, column_keys=list(columns))
    assert compiled.positiontup == list(columns), compiled.positiontup
    return str(compiled)


def bind_value(conn: Connection, column: ColumnElement[Any], value: Any) -> Any:
    """``value`` as ``column``'s type hands it to this connection's driver."""
    process = column.type.bind_processor(conn.dialect)
    return value if process is None else process(value)
