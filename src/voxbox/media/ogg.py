"""Ogg framing (RFC 3533) needed outside FFmpeg: an end-of-file check and an incremental reader."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

CAPTURE = b"OggS"
_HEADER = struct.Struct("<4sBBqIIIB")  # capture, version, flags, granule, serial, seq, crc, nsegs
FLAG_CONTINUED = 0x01
FLAG_BOS = 0x02
FLAG_EOS = 0x04
MAX_PAGE = _HEADER.size + 255 + 255 * 255


def ends_with_complete_page(path: Path) -> bool:
    """True if the file's last bytes are exactly one whole Ogg page.

    A file cut in the middle (an interrupted upload, a partial copy) ends inside a page; FFmpeg
    silently drops that page, so this is how a truncated Ogg is told from a complete one.
    """
    size = path.stat().st_size
    with path.open("rb") as f:
        f.seek(max(0, size - MAX_PAGE))
        tail = f.read()
    pos = tail.rfind(CAPTURE)
    while pos >= 0:
        try:
            if _page_end(tail, pos) == len(tail):
                return True
        except ValueError:
            pass  # "OggS" inside a packet, not a page
        pos = tail.rfind(CAPTURE, 0, pos)
    return False


def _page_end(buf: bytes | bytearray, pos: int) -> int | None:
    """Offset just past the page starting at `pos`; None if the buffer ends before the page's
    header does. Raises ValueError if what is at `pos` is not an Ogg page header."""
    if pos + _HEADER.size > len(buf):
        return None
    if buf[pos + 4] != 0:
        raise ValueError("unknown Ogg page version")
    nsegs = buf[pos + 26]
    body_at = pos + _HEADER.size + nsegs
    if body_at > len(buf):
        return None
    return body_at + sum(buf[pos + _HEADER.size : body_at])


class OggPacketReader:
    """Feeds on the bytes of a growing Ogg file, yields complete packets of the first stream.

    Only what a single-stream Ogg/Opus recording needs: pages of other serial numbers are
    skipped; the CRC is not verified (FFmpeg verifies it when the file is finally processed).
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._serial: int | None = None
        self._partial = bytearray()
        self.last_granule = -1
        self.eos = False

    def feed(self, data: bytes) -> list[bytes]:
        """Append `data`; return the packets it completes. Raises ValueError on bad framing."""
        out: list[bytes] = []
        self._buf += data
        pos = 0
        buf = self._buf
        while True:
            if len(buf) - pos < _HEADER.size:
                break
            if buf[pos : pos + 4] != CAPTURE:
                raise ValueError("lost Ogg page sync")
            end = _page_end(buf, pos)
            if end is None or end > len(buf):
                break
            _, _, flags, granule, serial, _, _, nsegs = _HEADER.unpack_from(buf, pos)
            if self._serial is None:
                self._serial = serial
            if serial == self._serial:
                out.extend(self._packets(buf, pos, nsegs, flags))
                if granule != -1:
                    self.last_granule = granule
                if flags & FLAG_EOS:
                    self.eos = True
            pos = end
        del self._buf[:pos]
        if len(self._buf) > MAX_PAGE:
            raise ValueError("Ogg page larger than allowed")
        return out

    def _packets(self, buf: bytearray, pos: int, nsegs: int, flags: int) -> Iterator[bytes]:
        lacing = buf[pos + _HEADER.size : pos + _HEADER.size + nsegs]
        at = pos + _HEADER.size + nsegs
        if not flags & FLAG_CONTINUED:
            self._partial.clear()
        for lace in lacing:
            self._partial += buf[at : at + lace]
            at += lace
            if lace < 255:
                yield bytes(self._partial)
                self._partial.clear()
        if len(self._partial) > 1 << 20:
            raise ValueError("Ogg packet larger than 1 MiB")
