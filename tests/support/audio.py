"""Small audio files made by code for the API tests (PyAV + numpy; no fixtures on disk)."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import av
import numpy as np

RATE = 48_000


def speechlike(seconds: float, rate: int = RATE) -> np.ndarray:
    """Mono float32 samples: tones whose loudness rises and falls like syllables."""
    t = np.arange(int(seconds * rate)) / rate
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2 * np.sin(2 * np.pi * 0.5 * t)
    tone = np.sin(2 * np.pi * 220 * t) + 0.5 * np.sin(2 * np.pi * 330 * t)
    return (0.4 * envelope * tone).astype(np.float32)


def wav_bytes(seconds: float, rate: int = 16_000) -> bytes:
    samples = (speechlike(seconds, rate) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buf.getvalue()


def encode(seconds: float, container: str, codec: str, rate: int = RATE) -> bytes:
    """``seconds`` of speech-like audio encoded with PyAV, e.g. ("webm", "libopus")."""
    return encode_samples(speechlike(seconds, rate), container, codec, rate)


def encode_samples(samples: np.ndarray, container: str, codec: str, rate: int = RATE) -> bytes:
    """Mono float32 samples encoded with PyAV, e.g. ("ipod", "aac") for an M4A."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        frame_size = 960 if "opus" in codec else 1024
        for start in range(0, len(samples), frame_size):
            chunk = samples[start : start + frame_size]
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def webm_recording(seconds: float) -> bytes:
    """A WebM/Opus recording like Chromium's MediaRecorder makes."""
    return encode(seconds, "webm", "libopus")


def chunks(data: bytes, count: int) -> list[bytes]:
    """``data`` cut into ``count`` pieces, as a recorder's timeslices arrive."""
    size = -(-len(data) // count)
    return [data[i : i + size] for i in range(0, len(data), size)]


def decoded_duration(path_or_bytes: Path | bytes) -> float:
    """Seconds of audio in a file, by decoding every frame."""
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    total = 0
    with av.open(source) as f:
        stream = f.streams.audio[0]
        for frame in f.decode(stream):
            total += frame.samples
            rate = frame.sample_rate
    return total / rate
