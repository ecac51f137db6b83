"""Pure helpers of the browser tests: names, clocks, sound and pictures made by code, axe reports.

Nothing here touches a browser; `e2e.ui` holds what does.
"""

from __future__ import annotations

import io
import math
import re
import secrets
import shutil
import struct
import subprocess
import time
import wave
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import av
import numpy as np

from support.audio import encode_samples

T = TypeVar("T")


# --- the two sizes the app must fit ---------------------------------------------------------------
@dataclass(frozen=True)
class Size:
    name: str
    width: int
    height: int
    touch: bool

    @property
    def viewport(self) -> dict[str, int]:
        return {"width": self.width, "height": self.height}


PHONE = Size("phone", 360, 740, touch=True)
DESKTOP = Size("desktop", 1280, 800, touch=False)
SIZES = (PHONE, DESKTOP)


# --- UI.md's names --------------------------------------------------------------------------------
def named(name: str) -> re.Pattern[str]:
    """UI.md's match for an accessible name: the whole name, ignoring case."""
    return re.compile(rf"^\s*{re.escape(name)}\s*$", re.IGNORECASE)


def begins_with(title: str) -> re.Pattern[str]:
    """A chat link's name: it begins with the chat's title (then an unread badge, a preview...)."""
    return re.compile(rf"^\s*{re.escape(title)}(?![\w])", re.IGNORECASE)


def containing(text: str) -> re.Pattern[str]:
    return re.compile(re.escape(text), re.IGNORECASE)


VOICE_OR_AUDIO = re.compile(r"^\s*(voice|audio) message\s*$", re.IGNORECASE)


def unique_text(prefix: str) -> str:
    """A message text no other test writes, so a text match finds only this one."""
    return f"{prefix} {secrets.token_hex(3)}"


# --- clocks: "m:ss" -------------------------------------------------------------------------------
# Minutes and two-digit seconds, not part of a longer clock such as 12:03:45.
CLOCK = re.compile(r"(?<![\d:])(\d{1,3}):([0-5]\d)(?![\d:])")


def parse_clock(text: str) -> int:
    """Seconds shown by "m:ss" (the whole text must be one clock)."""
    m = CLOCK.fullmatch(text.strip())
    assert m, f"not an m:ss clock: {text!r}"
    return int(m.group(1)) * 60 + int(m.group(2))


def first_clock(text: str) -> int:
    """Seconds of the first "m:ss" in a text, e.g. a voice message's "Play 0:05 1.5x"."""
    m = CLOCK.search(text)
    assert m, f"no m:ss time in {text!r}"
    return int(m.group(1)) * 60 + int(m.group(2))


def speed(rate: float) -> str:
    """The "Playback speed" button's text: "1\u00d7", "1.5\u00d7", "2\u00d7"."""
    return f"{rate:g}\u00d7"


def clock(seconds: float) -> str:
    """Whole seconds as "m:ss" (what the app shows)."""
    s = int(seconds)
    return f"{s // 60}:{s % 60:02d}"


def clock_pattern(seconds: float) -> re.Pattern[str]:
    """A duration as the app may show it: "m:ss" of the seconds rounded down or to the nearest."""
    shown = {clock(math.floor(seconds)), clock(math.floor(seconds + 0.5))}
    either = "|".join(re.escape(c) for c in sorted(shown))
    return re.compile(rf"(?<![\d:])(?:{either})(?![\d:])")


# --- sound ----------------------------------------------------------------------------------------
# Debian's Chromium (never a downloaded one) with a fake microphone; add
# --use-file-for-fake-audio-capture=WAV to feed it speech. The benchmark launches it the same way.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]

SPEECH_TEXT = (
    "Hello Bob, this is Alice. I am recording a voice message for you on my phone. "
    "The quick brown fox jumps over the lazy dog. One, two, three, four, five, six, seven, "
    "eight, nine, ten. Call me back when you hear this. Bye for now."
)
SPEECH_RATE = 48_000


def make_speech_wav(path: Path, seconds: float) -> float:
    """Speech by espeak-ng, made 48 kHz mono 16-bit and padded/trimmed to `seconds` by sox.

    Returns the file's exact duration. Fails with a hint when the tools are missing.
    """
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise RuntimeError(
                f"{tool} is missing: run scripts/test-deps.sh (apt-get install {tool})"
            )
    raw = path.with_suffix(".raw.wav")
    subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", "165", "-w", str(raw), SPEECH_TEXT],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "sox",
            "-V1",
            str(raw),
            "-r",
            str(SPEECH_RATE),
            "-c",
            "1",
            "-b",
            "16",
            str(path),
            "pad",
            "0",
            str(seconds),
            "trim",
            "0",
            str(seconds),
        ],
        check=True,
        capture_output=True,
    )
    raw.unlink()
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, SPEECH_RATE)
        return w.getnframes() / w.getframerate()


def wav_samples(path: Path, start: float = 0.0, seconds: float | None = None) -> np.ndarray:
    """Mono float32 samples of a 16-bit WAV, optionally a slice of it."""
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        w.setpos(int(start * rate))
        n = w.getnframes() - int(start * rate) if seconds is None else int(seconds * rate)
        data = np.frombuffer(w.readframes(n), dtype="<i2")
    return (data.astype(np.float32) / 32768.0).copy()


def encode_audio(samples: np.ndarray, container: str, codec: str, rate: int = SPEECH_RATE) -> bytes:
    """Mono float32 samples encoded by PyAV, e.g. ("ipod", "aac") for an M4A, ("ogg", "libopus")."""
    return encode_samples(samples, container, codec, rate)


def decoded_seconds(data: bytes) -> tuple[str, float]:
    """(container format name, seconds of audio) of a file, by decoding every frame."""
    total = 0
    rate = 1
    with av.open(io.BytesIO(data)) as f:
        fmt = f.format.name
        for frame in f.decode(audio=0):
            total += frame.samples
            rate = frame.sample_rate
    return fmt, total / rate


# --- pictures -------------------------------------------------------------------------------------
def tiny_png(width: int = 16, height: int = 16) -> bytes:
    """A real PNG image (a red square), to be passed off as audio."""
    row = b"\x00" + b"\xff\x00\x00" * width
    raw = row * height

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def decode_png(png: bytes) -> np.ndarray:
    """An RGB array (height, width, 3) of a PNG screenshot."""
    with av.open(io.BytesIO(png)) as f:
        frame = next(f.decode(video=0))
        return frame.to_ndarray(format="rgb24")


@dataclass(frozen=True)
class InkProfile:
    """How much is drawn in each pixel column of a picture, against its background colour."""

    heights: np.ndarray  # per column: pixels that differ from the background

    @property
    def inked(self) -> np.ndarray:
        return self.heights[self.heights > 0]

    @property
    def distinct_heights(self) -> int:
        return len(set(self.inked.tolist()))

    @property
    def modal_share(self) -> float:
        """Share of the drawn columns that have the most common height (near 1 for a flat track)."""
        inked = self.inked
        if not inked.size:
            return 1.0
        return float(np.bincount(inked).max() / inked.size)

    @property
    def changes(self) -> float:
        """How often the height changes from one column to the next, per column."""
        if self.heights.size < 2:
            return 0.0
        return float(np.count_nonzero(np.diff(self.heights)) / (self.heights.size - 1))

    def looks_like_waveform(self) -> bool:
        """Bars of many heights all across the width, not a flat track with a thumb or a label.

        A range input's track (two levels, a thumb) or a bar with a time on it changes height
        in few places; 64 bars of speech change it all the time.
        """
        return (
            self.inked.size >= 16
            and self.distinct_heights >= 8
            and self.modal_share <= 0.6
            and self.changes >= 0.25
        )

    def describe(self) -> str:
        return (
            f"{self.heights.size} columns, {self.inked.size} drawn, "
            f"{self.distinct_heights} distinct heights, "
            f"{self.modal_share:.0%} of them of the commonest height, "
            f"height changes at {self.changes:.0%} of the columns"
        )


def ink_profile(png: bytes, threshold: int = 60) -> InkProfile:
    rgb = decode_png(png).astype(np.int16)
    colours, counts = np.unique(rgb.reshape(-1, 3), axis=0, return_counts=True)
    background = colours[counts.argmax()]
    ink = np.abs(rgb - background).sum(axis=2) > threshold
    return InkProfile(heights=ink.sum(axis=0))


# --- accessibility (axe-core results) -------------------------------------------------------------
BLOCKING_IMPACTS = ("serious", "critical")


def blocking_violations(axe_response: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in axe_response.get("violations", []) if v.get("impact") in BLOCKING_IMPACTS]


def format_violations(violations: list[dict[str, Any]], max_nodes: int = 5) -> str:
    """A readable report: rule, impact, what it means, and the offending elements."""
    lines: list[str] = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']}")
        lines.append(f"  {v.get('helpUrl', '')}")
        for node in v.get("nodes", [])[:max_nodes]:
            target = " ".join(str(t) for t in node.get("target", []))
            html = " ".join(str(node.get("html", "")).split())
            if len(html) > 160:
                html = html[:157] + "..."
            lines.append(f"    at {target}: {html}")
            summary = " ".join(str(node.get("failureSummary", "")).split())
            if summary:
                lines.append(f"      {summary}")
        extra = len(v.get("nodes", [])) - max_nodes
        if extra > 0:
            lines.append(f"    ... and {extra} more")
    return "\n".join(lines)


# --- text a person can read -----------------------------------------------------------------------
_MACHINE_TALK = re.compile(
    r"undefined|\bnull\b|\bNaN\b|\[object|\b[a-z]+_[a-z_]+\b|Traceback|\b(?:HTTP|status) ?\d{3}\b"
)


def assert_readable(text: str, *, about: str) -> None:
    """`text` explains a failure in words: a sentence, not a status code or an error object."""
    words = re.findall(r"[A-Za-z]{2,}", text)
    assert len(words) >= 2, f"{about}: {text!r} is not a reason in words"
    bad = _MACHINE_TALK.search(text)
    assert bad is None, f"{about}: {text!r} shows machine talk ({bad.group(0)!r})"


# --- waiting for the server (no browser event to await) -------------------------------------------
def eventually(check: Callable[[], T], *, timeout: float = 10.0, what: str = "condition") -> T:
    """Calls `check` until it returns a truthy value (returned) or `timeout` passes (fails)."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    last: T = check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {last!r} after {timeout:.0f} s")
        time.sleep(delay)  # polling the server: there is no event to wait for
        delay = min(delay * 2, 0.5)
        last = check()
    return last


def close_to(value: float, expected: float, tolerance: float) -> bool:
    return math.isfinite(value) and abs(value - expected) <= tolerance


# --- pages made by the tests ----------------------------------------------------------------------
SHARE_FORM = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Another app</title></head>
<body>
<main>
<h1>Another app</h1>
<form method="post" action="/share" enctype="multipart/form-data">
  <label>Audio to share <input type="file" name="audio" multiple></label>
  <input type="hidden" name="title" value="A memo from another app">
  <input type="hidden" name="text" value="Listen to this">
  <button type="submit">Share to voxbox</button>
</form>
</main>
</body>
</html>
"""

# Installed in every page before the app's scripts: counts what the page plays through media
# elements (an <audio> in the page or a detached `new Audio()`), at which rate, and how far.
AUDIO_PROBE = """
(() => {
  const probe = { started: 0, progressed: 0, rate: 1, furthest: 0 };
  const watched = new WeakSet();
  const watch = (el) => {
    if (watched.has(el)) return;
    watched.add(el);
    el.addEventListener("timeupdate", () => {
      if (!el.paused && el.currentTime > 0) {
        probe.progressed += 1;
        probe.rate = el.playbackRate;
        probe.furthest = Math.max(probe.furthest, el.currentTime);
      }
    });
    el.addEventListener("ratechange", () => { probe.rate = el.playbackRate; });
  };
  const play = HTMLMediaElement.prototype.play;
  HTMLMediaElement.prototype.play = function (...args) {
    probe.started += 1;
    watch(this);
    return play.apply(this, args);
  };
  if (typeof AudioScheduledSourceNode !== "undefined") {
    const start = AudioScheduledSourceNode.prototype.start;
    AudioScheduledSourceNode.prototype.start = function (...args) {
      if (this instanceof AudioBufferSourceNode) { probe.started += 1; probe.progressed += 1; }
      return start.apply(this, args);
    };
  }
  Object.defineProperty(window, "__e2eAudio", { value: probe });
})();
"""
