"""Streaming `multipart/form-data`: the parts one by one, a file's bytes as they arrive.

Starlette's form parser keeps every file of a form (in memory up to 1 MB, then in temporary
files) before the handler sees the first one, with no limit on their size. Here each file part
is an async iterator of its bytes, so the caller streams it to storage under its own limit.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from voxbox.core.errors import BadRequest

if TYPE_CHECKING:  # a TypedDict only its stubs define
    from python_multipart.multipart import MultipartCallbacks

MAX_PARTS = 1000
MAX_HEADER_BYTES = 16 * 1024

# ("part", Part) when a part's headers are read, ("data", bytes), ("end", None) at its end.
_Event = tuple[str, object]


@dataclass
class Part:
    """One part of the form. ``filename`` is None for a plain field."""

    name: str
    filename: str | None
    content_type: str | None
    _events: AsyncIterator[_Event] = field(repr=False)
    _done: bool = False

    async def chunks(self) -> AsyncIterator[bytes]:
        """The part's bytes as they arrive; read them at most once."""
        while not self._done:
            try:
                kind, value = await anext(self._events)
            except StopAsyncIteration:
                raise BadRequest("The form data ends in the middle of a part.") from None
            if kind == "data":
                assert isinstance(value, bytes)
                yield value
            elif kind == "end":
                self._done = True

    async def drain(self) -> None:
        async for _ in self.chunks():
            pass


def boundary_of(content_type: str) -> bytes:
    """The boundary of a `multipart/form-data` Content-Type; BadRequest if there is none."""
    kind, options = parse_options_header(content_type)
    if kind != b"multipart/form-data":
        raise BadRequest("Send multipart/form-data.")
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("The multipart Content-Type has no boundary.")
    return boundary


async def read_parts(stream: AsyncIterator[bytes], content_type: str) -> AsyncGenerator[Part, None]:
    """The parts of a form, in order. A part's bytes must be read (or are skipped) before the
    next part comes. Malformed data: BadRequest."""
    boundary = boundary_of(content_type)
    async with aclosing(_events(stream, boundary)) as events:
        async for kind, value in events:
            if kind == "part":
                assert isinstance(value, _PartHead)
                part = Part(value.name, value.filename, value.content_type, events)
                yield part
                await part.drain()


@dataclass
class _PartHead:
    name: str
    filename: str | None
    content_type: str | None


@dataclass
class _HeaderState:
    name: bytes = b""
    value: bytes = b""
    size: int = 0
    headers: dict[bytes, bytes] = field(default_factory=dict)


async def _events(stream: AsyncIterator[bytes], boundary: bytes) -> AsyncGenerator[_Event, None]:
    pending: list[_Event] = []
    head = _HeaderState()
    parts = 0

    def on_part_begin() -> None:
        nonlocal head, parts
        parts += 1
        if parts > MAX_PARTS:
            raise BadRequest(f"A form has at most {MAX_PARTS} parts.")
        head = _HeaderState()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        _grow(head, end - start)
        head.name += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        _grow(head, end - start)
        head.value += data[start:end]

    def on_header_end() -> None:
        head.headers[head.name.strip().lower()] = head.value.strip()
        head.name, head.value = b"", b""

    def on_headers_finished() -> None:
        _, options = parse_options_header(head.headers.get(b"content-disposition", b""))
        name = options.get(b"name")
        if name is None:
            raise BadRequest("A form part has no name.")
        filename = options.get(b"filename")
        content_type = head.headers.get(b"content-type")
        pending.append(
            (
                "part",
                _PartHead(
                    _decode(name),
                    None if filename is None else _decode(filename),
                    None if content_type is None else _decode(content_type),
                ),
            )
        )

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if end > start:
            pending.append(("data", bytes(data[start:end])))

    def on_part_end() -> None:
        pending.append(("end", None))

    callbacks: MultipartCallbacks = {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    }
    parser = MultipartParser(boundary, callbacks)
    try:
        async for chunk in stream:
            parser.write(chunk)
            batch = pending.copy()
            pending.clear()
            for event in batch:
                yield event
        parser.finalize()
    except FormParserError as exc:
        raise BadRequest("The form data is not valid multipart.") from exc
    for event in pending:
        yield event


def _grow(head: _HeaderState, size: int) -> None:
    head.size += size
    if head.size > MAX_HEADER_BYTES:
        raise BadRequest("A form part's headers are too long.")


def _decode(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")
