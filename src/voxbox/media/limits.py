"""Bounds the pipeline enforces; the server builds one from its settings per media kind."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MediaLimits:
    """`max_duration_ms`: longest accepted audio (voice 60 min, audio 6 h by default).

    `max_decode_seconds`: wall-clock budget for one `process()` call (decode, encode, write);
    exceeding it raises `DecodeTimeout`. It is checked between packets, so the overshoot is at
    most one packet's work (milliseconds).
    """

    max_duration_ms: int
    max_decode_seconds: float

    def __post_init__(self) -> None:
        if self.max_duration_ms <= 0:
            raise ValueError("max_duration_ms must be positive")
        if self.max_decode_seconds <= 0:
            raise ValueError("max_decode_seconds must be positive")
