"""`voxbox send FILE` and `voxbox download` against a real server, each command a
`python -m voxbox` subprocess with its own config directory, as a person or a script runs them.

The audio is generated here: WAV files of a few tones, whose exact length is known.
"""

from __future__ import annotations

import array
import json
import math
import queue
import signal
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.api import User
from support.cli import COMMAND_TIMEOUT, login, ok, voxbox
from support.server import ServerProcess, base_env

RATE = 48_000


def write_wav(path: Path, seconds: float) -> Path:
    """Mono 16-bit 48 kHz: a different tone each second (a waveform that is not flat)."""
    samples = array.array("h")
    for i in range(round(seconds * RATE)):
        freq = 220 * (1 + (i // RATE) % 4)
        samples.append(round(12_000 * math.sin(2 * math.pi * freq * i / RATE)))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.tobytes())
    return path


def wav_ms(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return 1000 * w.getnframes() / w.getframerate()


def assert_duration(duration_ms: float, expected_ms: float) -> None:
    # The server measures by decoding, to 20 ms; Opus adds at most a frame of padding.
    assert abs(duration_ms - expected_ms) <= max(60, expected_ms * 0.01), (
        duration_ms,
        expected_ms,
    )


def ogg_opus_ms(path: Path) -> float:
    """The length of an Ogg/Opus file, by decoding all of it."""
    import av

    with av.open(str(path)) as container:
        assert container.format.name == "ogg"
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "opus"
        samples = sum(frame.samples for frame in container.decode(stream))
        return 1000 * samples / stream.codec_context.sample_rate


def history(user: User, other: User) -> list[dict[str, Any]]:
    return user.messages(user.direct_with(other))


def find(messages: list[dict[str, Any]], message_id: str) -> dict[str, Any]:
    matching = [m for m in messages if m["id"] == message_id]
    assert len(matching) == 1, (message_id, messages)
    return matching[0]


def pending_uploads(config_dir: Path) -> dict[str, Any]:
    file = config_dir / "uploads.json"
    return json.loads(file.read_text()) if file.exists() else {}


@pytest.mark.timeout(180)
def test_send_audio_and_voice_then_download(
    server: ServerProcess, make_user: Callable[..., User], tmp_path: Path
) -> None:
    alice, bob = make_user(), make_user()
    alice_dir = login(server, alice, tmp_path / "alice")
    bob_dir = login(server, bob, tmp_path / "bob")
    tone = write_wav(tmp_path / "tone.wav", 3.0)

    sent = voxbox(alice_dir, "send", f"@{bob.handle}", str(tone))
    audio_id = ok(sent).strip()
    assert "Uploading tone.wav" in sent.stderr
    voice_id = ok(voxbox(alice_dir, "send", bob.handle, str(tone), "--voice")).strip()
    assert pending_uploads(alice_dir) == {}

    messages = history(bob, alice)
    audio, voice = find(messages, audio_id), find(messages, voice_id)
    assert (audio["kind"], audio["sender"]) == ("audio", alice.handle)
    assert audio["media"]["filename"] == "tone.wav"
    assert audio["media"]["size"] == tone.stat().st_size
    assert voice["kind"] == "voice"
    for message in (audio, voice):
        assert_duration(message["media"]["duration_ms"], wav_ms(tone))
        assert len(message["media"]["waveform"]) == 64

    # Bob downloads: by default the audio file's own name and bytes, in the current directory.
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    saved = ok(voxbox(bob_dir, "download", audio_id, cwd=downloads)).strip()
    assert saved == "tone.wav"
    assert (downloads / "tone.wav").read_bytes() == tone.read_bytes()
    assert sorted(p.name for p in downloads.iterdir()) == ["tone.wav"]

    again = voxbox(bob_dir, "download", audio_id, cwd=downloads)
    assert again.returncode == 1
    assert "File exists" in again.stderr
    ok(voxbox(bob_dir, "download", audio_id, "--force", cwd=downloads))

    ogg = downloads / "tone-as.ogg"
    ok(voxbox(bob_dir, "download", audio_id, "--format", "ogg", "-o", str(ogg)))
    assert ogg.read_bytes()[:4] == b"OggS"
    assert_duration(ogg_opus_ms(ogg), wav_ms(tone))

    # A voice message downloads as Ogg/Opus unless asked otherwise.
    voice_file = Path(ok(voxbox(bob_dir, "download", voice_id, "-o", str(downloads))).strip())
    assert voice_file.parent == downloads and voice_file.suffix == ".ogg"
    assert_duration(ogg_opus_ms(voice_file), wav_ms(tone))


def test_send_refuses_what_is_not_audio(
    server: ServerProcess, make_user: Callable[..., User], tmp_path: Path
) -> None:
    alice, bob = make_user(), make_user()
    alice_dir = login(server, alice, tmp_path / "alice")
    fake = tmp_path / "picture.opus"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)

    result = voxbox(alice_dir, "send", bob.handle, str(fake))
    assert result.returncode == 1, result.stderr
    assert "Error:" in result.stderr
    assert history(bob, alice) == []
    assert pending_uploads(alice_dir) == {}


class StderrLines:
    """The stderr lines of a running process, read on a thread so waits can time out."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.seen: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no such line within {timeout}s: {self.seen}") from None
            if line is None:
                raise AssertionError(f"exited {self.proc.wait()} first: {self.seen}")
            self.seen.append(line)
            if predicate(line):
                return line

    def rest(self) -> str:
        self.proc.wait(timeout=COMMAND_TIMEOUT)
        while (line := self._lines.get(timeout=COMMAND_TIMEOUT)) is not None:
            self.seen.append(line)
        return "".join(self.seen)


@pytest.mark.timeout(180)
def test_send_resumes_after_ctrl_c(
    server: ServerProcess, make_user: Callable[..., User], tmp_path: Path
) -> None:
    alice, bob = make_user(), make_user()
    alice_dir = login(server, alice, tmp_path / "alice")
    big = write_wav(tmp_path / "long.wav", 21.0)  # ~2 MB
    size = big.stat().st_size
    # Small chunks: the upload takes many requests, so Ctrl-C lands in the middle of it.
    env = {"VOXBOX_UPLOAD_CHUNK_SIZE": "8192"}
    args = ["send", bob.handle, str(big)]

    proc = subprocess.Popen(
        [sys.executable, "-m", "voxbox", *args],
        env=base_env({"VOXBOX_CONFIG_DIR": str(alice_dir), **env}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stderr = StderrLines(proc)
        stderr.wait_for(lambda line: line.startswith("Uploading long.wav"))
        proc.send_signal(signal.SIGINT)
        first_err = stderr.rest()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (
        f"exit {proc.returncode} (0: the upload finished before Ctrl-C)\n{first_err}"
    )
    assert "Interrupted; run the same command again to continue." in first_err
    assert history(bob, alice) == []
    (entry,) = pending_uploads(alice_dir).values()
    drafts = alice.http.get("/uploads", params={"state": "open"}).json()["uploads"]
    (draft,) = [d for d in drafts if entry["upload_url"].endswith("/" + d["id"])]
    assert 0 < draft["offset"] < size

    resumed = voxbox(alice_dir, *args, env=env)
    message_id = ok(resumed).strip()
    assert "Resuming at" in resumed.stderr
    assert pending_uploads(alice_dir) == {}

    messages = history(bob, alice)
    assert [m["id"] for m in messages] == [message_id]
    (message,) = messages
    assert message["client_id"] == entry["client_id"]
    assert message["media"]["size"] == size
    assert_duration(message["media"]["duration_ms"], wav_ms(big))

    # Downloading gets the very bytes that were uploaded in two goes.
    bob_dir = login(server, bob, tmp_path / "bob")
    out = tmp_path / "copy.wav"
    ok(voxbox(bob_dir, "download", message_id, "-o", str(out)))
    assert out.read_bytes() == big.read_bytes()
