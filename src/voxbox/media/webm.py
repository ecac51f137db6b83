"""An incremental reader of the Opus blocks in a WebM recording (the subset MediaRecorder writes).

Matroska is EBML: elements of (ID, size, payload), sizes possibly "unknown" for the Segment and
the Clusters of a live recording. The reader scans flat: it steps *into* Segment and Cluster
(whose ends it never needs), keeps Tracks, SimpleBlock and BlockGroup elements whole, and skips
everything else by its size. Blocks must not use Xiph or EBML lacing (no recorder uses lacing
for Opus); other layouts raise ValueError, and the caller falls back to FFmpeg.
"""

from __future__ import annotations

EBML_MAGIC = b"\x1aE\xdf\xa3"

_SEGMENT = 0x18538067
_CLUSTER = 0x1F43B675
_TRACKS = 0x1654AE6B
_TRACK_ENTRY = 0xAE
_TRACK_NUMBER = 0xD7
_TRACK_TYPE = 0x83
_CODEC_ID = 0x86
_CODEC_PRIVATE = 0x63A2
_SIMPLE_BLOCK = 0xA3
_BLOCK_GROUP = 0xA0
_BLOCK = 0xA1
_AUDIO_TRACK = 2
_STEP_INTO = frozenset({_SEGMENT, _CLUSTER})
_KEEP_WHOLE = frozenset({_TRACKS, _SIMPLE_BLOCK, _BLOCK_GROUP})
_MAX_ELEMENT = 1 << 20


def _vint(buf: bytes | bytearray, pos: int, *, keep_marker: bool) -> tuple[int, int] | None:
    """(value, length) of the EBML variable-size integer at `pos`; None if incomplete.

    For a size, an all-ones value means "unknown" and is returned as -1.
    """
    if pos >= len(buf):
        return None
    first = buf[pos]
    if first == 0:
        raise ValueError("invalid EBML variable-size integer")
    length = 8 - first.bit_length() + 1
    if pos + length > len(buf):
        return None
    value = first if keep_marker else first & ((1 << (8 - length)) - 1)
    for i in range(1, length):
        value = (value << 8) | buf[pos + i]
    if not keep_marker and value == (1 << (7 * length)) - 1:
        return -1, length
    return value, length


def _children(data: bytes) -> list[tuple[int, bytes]]:
    """The (ID, payload) elements of a complete master element's payload."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        ident = _vint(data, pos, keep_marker=True)
        size = _vint(data, pos + ident[1], keep_marker=False) if ident else None
        if ident is None or size is None or size[0] < 0:
            raise ValueError("malformed EBML element")
        start = pos + ident[1] + size[1]
        out.append((ident[0], data[start : start + size[0]]))
        pos = start + size[0]
    return out


def _uint(data: bytes) -> int:
    return int.from_bytes(data, "big") if data else 0


class WebmOpusReader:
    """Feed it the file's bytes in order; it returns the Opus packets of the first audio track.

    `codec_private` (the OpusHead) is set once the Tracks element has been read.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._skip = 0  # bytes of a skipped element still to come
        self._track: int | None = None
        self.codec_private: bytes | None = None

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        if self._skip:
            dropped = min(self._skip, len(data))
            self._skip -= dropped
            data = data[dropped:]
        self._buf += data
        buf = self._buf
        pos = 0
        while True:
            ident = _vint(buf, pos, keep_marker=True)
            if ident is None:
                break
            size = _vint(buf, pos + ident[1], keep_marker=False)
            if size is None:
                break
            element, (length, head) = ident[0], size
            body = pos + ident[1] + head
            if element in _STEP_INTO:
                pos = body
                continue
            if length < 0:
                raise ValueError(f"unknown-size EBML element {element:#x}")
            if element in _KEEP_WHOLE:
                if length > _MAX_ELEMENT:
                    raise ValueError("WebM element too large")
                if body + length > len(buf):
                    break
                out.extend(self._element(element, bytes(buf[body : body + length])))
                pos = body + length
                continue
            if body + length > len(buf):
                self._skip = body + length - len(buf)
                pos = len(buf)
                break
            pos = body + length
        del self._buf[:pos]
        return out

    def _element(self, element: int, payload: bytes) -> list[bytes]:
        if element == _TRACKS:
            self._read_tracks(payload)
            return []
        if element == _BLOCK_GROUP:
            blocks = [body for ident, body in _children(payload) if ident == _BLOCK]
            return [packet for block in blocks for packet in self._block(block)]
        return self._block(payload)

    def _read_tracks(self, payload: bytes) -> None:
        for ident, entry in _children(payload):
            if ident != _TRACK_ENTRY or self._track is not None:
                continue
            fields = dict(_children(entry))
            if _uint(fields.get(_TRACK_TYPE, b"")) != _AUDIO_TRACK:
                continue
            if fields.get(_CODEC_ID, b"").rstrip(b"\0") != b"A_OPUS":
                raise ValueError("the audio track is not Opus")
            self._track = _uint(fields.get(_TRACK_NUMBER, b""))
            self.codec_private = fields.get(_CODEC_PRIVATE)
        if self._track is None or not self.codec_private:
            raise ValueError("no Opus audio track")

    def _block(self, block: bytes) -> list[bytes]:
        track = _vint(block, 0, keep_marker=False)
        if track is None or len(block) < track[1] + 3:
            raise ValueError("malformed WebM block")
        if self._track is None or track[0] != self._track:
            return []
        flags = block[track[1] + 2]
        frame = block[track[1] + 3 :]
        lacing = (flags >> 1) & 3
        if lacing == 0:
            return [frame]
        if lacing == 2:  # fixed-size lacing
            count = frame[0] + 1
            data = frame[1:]
            if len(data) % count:
                raise ValueError("bad fixed-size lacing")
            step = len(data) // count
            return [data[i * step : (i + 1) * step] for i in range(count)]
        raise ValueError("Xiph/EBML lacing is not supported")
