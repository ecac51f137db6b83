"""uvicorn's httptools protocol, with a bound on a request's head (its line and headers).

llhttp takes a header of any size and any number of headers, and httptools gathers a long one
piece by piece: a 100 MB header took 13 s of one core and stalled every other connection. So
the head is measured as it arrives, before the parser sees it: past ``max_bytes`` or
``max_headers`` the answer is ``431 Request Header Fields Too Large`` (problem JSON) and the
connection closes.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("voxbox.api")
_HEAD_END = b"\r\n\r\n"


def bounded_http_protocol(max_bytes: int, max_headers: int) -> type[HttpToolsProtocol]:
    """The protocol class for ``uvicorn.run(http=...)``, with these limits."""

    class BoundedHttpToolsProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._in_head = True
            self._head_bytes = 0
            self._head_lines = 0
            self._tail = b""  # the last bytes seen, for a head end split across reads

        def data_received(self, data: bytes) -> None:
            if self._in_head:
                window = self._tail + data
                end = window.find(_HEAD_END)
                head = data if end < 0 else data[: max(0, end + len(_HEAD_END) - len(self._tail))]
                self._head_bytes += len(head)
                self._head_lines += head.count(b"\n")
                self._tail = window[-(len(_HEAD_END) - 1) :]
                # The request line and the blank line that ends the head are lines too.
                if self._head_bytes > max_bytes or self._head_lines > max_headers + 2:
                    self._refuse()
                    return
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._in_head, self._head_bytes, self._head_lines, self._tail = False, 0, 0, b""
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_head = True  # the next request on this connection

        def _refuse(self) -> None:
            log.warning(
                "refused a request head over %d bytes or %d headers from %s",
                max_bytes,
                max_headers,
                self.client[0] if self.client else "?",
            )
            detail = f"Request headers are limited to {max_bytes} bytes and {max_headers} fields."
            body = json.dumps(
                {
                    "type": "about:blank",
                    "title": "Request header fields too large",
                    "status": 431,
                    "detail": detail,
                    "code": "header_fields_too_large",
                }
            ).encode()
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                b"content-type: application/problem+json\r\n"
                b"content-length: " + str(len(body)).encode() + b"\r\n"
                b"x-content-type-options: nosniff\r\n"
                b"connection: close\r\n\r\n" + body
            )
            self._in_head = False
            self.transport.close()

    return BoundedHttpToolsProtocol
