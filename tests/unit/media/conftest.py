"""The media corpus, generated once per session into a temporary directory."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from media_corpus import (
    BAD_NAMES,
    GOOD_NAMES,
    Corpus,
    Sample,
    chromium_webm,
    encode,
    ogg_claiming,
    png_bytes,
    silence,
    speech_tools_missing,
    speech_wav,
    transcode_file,
    wav,
    wav_claiming,
    webm_pieces,
    without_codec_delay,
)


def _good(root: Path) -> dict[str, Sample]:
    out: dict[str, Sample] = {}

    def add(
        name: str,
        suffix: str,
        make: Callable[[Path], object],
        *,
        signal: str = "tone",
        remux: bool = False,
        channels: int = 1,
    ) -> None:
        path = root / f"{name}{suffix}"
        make(path)
        out[name] = Sample(name, path, signal, remux, channels)

    add("webm_opus_chromium", ".webm", chromium_webm, remux=True)
    add(
        "webm_opus_silence",
        ".webm",
        lambda p: chromium_webm(p, signal=silence),
        signal="silence",
        remux=True,
    )
    add(
        "webm_opus_no_codec_delay",
        ".webm",
        lambda p: without_codec_delay(out["webm_opus_chromium"].path, p),
        remux=True,
    )
    add("ogg_opus", ".opus", lambda p: encode(p, "ogg", "libopus", bit_rate=32_000), remux=True)
    add(
        "ogg_opus_stereo",
        ".ogg",
        lambda p: encode(p, "ogg", "libopus", channels=2, bit_rate=64_000),
        remux=True,
        channels=2,
    )
    add("mka_opus", ".mka", lambda p: encode(p, "matroska", "libopus"), remux=True)
    add("m4a_aac", ".m4a", lambda p: encode(p, "ipod", "aac", rate=44_100, bit_rate=64_000))
    add(
        "m4a_silence",
        ".m4a",
        lambda p: encode(p, "ipod", "aac", signal=silence, rate=48_000),
        signal="silence",
    )
    add(
        "mp3",
        ".mp3",
        lambda p: encode(p, "mp3", "libmp3lame", rate=44_100, channels=2, bit_rate=128_000),
        channels=2,
    )
    add("wav", ".wav", wav)
    add("wav_silence", ".wav", lambda p: wav(p, signal=silence), signal="silence")
    add("flac", ".flac", lambda p: encode(p, "flac", "flac", rate=44_100, channels=2), channels=2)
    add(
        "ogg_vorbis",
        ".ogg",
        lambda p: encode(p, "ogg", "vorbis", rate=44_100, channels=2),
        channels=2,
    )
    add("amr", ".amr", lambda p: encode(p, "amr", "libopencore_amrnb", rate=8_000, bit_rate=12_200))
    add(
        "3gp_amr",
        ".3gp",
        lambda p: encode(p, "3gp", "libopencore_amrnb", rate=8_000, bit_rate=12_200),
    )
    add("webm_vorbis", ".webm", lambda p: encode(p, "webm", "vorbis", channels=2), channels=2)
    add("mp4_video", ".mp4", lambda p: encode(p, "mp4", "aac", video="mpeg4", bit_rate=64_000))
    add("mov_video", ".mov", lambda p: encode(p, "mov", "aac", video="mpeg4", bit_rate=64_000))
    return out


def _bad(root: Path, good: dict[str, Sample]) -> dict[str, Path]:
    bad: dict[str, Path] = {}
    bad["empty"] = root / "empty.opus"
    bad["empty"].write_bytes(b"")
    ogg = good["ogg_opus"].path.read_bytes()
    bad["truncated_ogg"] = root / "truncated.opus"
    bad["truncated_ogg"].write_bytes(ogg[: len(ogg) // 2])
    bad["png_as_opus"] = root / "image.opus"
    bad["png_as_opus"].write_bytes(png_bytes())
    bad["wav_claims_10h"] = root / "claims10h.wav"
    wav_claiming(bad["wav_claims_10h"], 10 * 3600)
    bad["ogg_claims_10h"] = root / "claims10h.opus"
    ogg_claiming(good["ogg_opus"].path, bad["ogg_claims_10h"], 10 * 3600)
    bad["random"] = root / "random.m4a"
    bad["random"].write_bytes(random.Random(3).randbytes(5000))
    bad["video_only"] = root / "video_only.mp4"
    _video_only(bad["video_only"])
    return bad


def _video_only(path: Path) -> None:
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width = stream.height = 16
        stream.pix_fmt = "yuv420p"
        for i in range(20):
            frame = av.VideoFrame.from_ndarray(
                np.full((16, 16, 3), i * 10, np.uint8), format="rgb24"
            )
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    root = tmp_path_factory.mktemp("media-corpus")
    good = _good(root)
    pieces = webm_pieces(root / "webm_pieces.webm")
    good["webm_pieces"] = Sample("webm_pieces", root / "webm_pieces.webm", "tone", True, 1)
    corpus = Corpus(root=root, good=good, bad=_bad(root, good), pieces=pieces)
    assert sorted(corpus.good) == sorted(GOOD_NAMES)
    assert sorted(corpus.bad) == sorted(BAD_NAMES)
    return corpus


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """espeak-ng speech as WAV, M4A/AAC and Ogg/Opus (the tools are test dependencies)."""
    missing = speech_tools_missing()
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not installed: the speech tests need the Debian packages "
            "espeak-ng and sox (apt-get install -y espeak-ng sox; `make test` installs them)"
        )
    root = tmp_path_factory.mktemp("media-speech")
    out = {"wav": root / "speech.wav", "m4a": root / "speech.m4a", "opus": root / "speech.opus"}
    speech_wav(out["wav"])
    transcode_file(out["wav"], out["m4a"], "ipod", "aac", bit_rate=64_000)
    transcode_file(out["wav"], out["opus"], "ogg", "libopus", bit_rate=32_000)
    return out
