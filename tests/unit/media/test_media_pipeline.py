"""process(), probe() and render_mp3() over the generated corpus (see conftest.py)."""

from __future__ import annotations

import itertools
import random
import resource
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import av
import pytest
from media_corpus import BAD_NAMES, GOOD_NAMES, Corpus, chromium_webm, encode, wav, wav_claiming

from voxbox.media import (
    OGG_OPUS,
    DecodeTimeout,
    InvalidMedia,
    MediaError,
    MediaLimits,
    NotAudio,
    TooLong,
    probe,
    process,
    render_mp3,
)

LIMITS = MediaLimits(max_duration_ms=60 * 60_000, max_decode_seconds=60)
# Transcoding may keep or lose a few ms of the source codec's priming/padding (AAC 1024
# samples, MP3 1105, AMR a 20 ms frame); remuxing Opus keeps the exact sample count.
TRANSCODE_PADDING_MS = 25


def decoded(path: Path) -> tuple[float, int, int, str, str]:
    """(duration ms, channels, packets, container, codec) of a file's first audio stream, by
    decoding every frame with PyAV."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = packets = 0
        rate = 0
        for packet in container.demux(stream):
            if not packet.size:
                continue
            packets += 1
            for frame in packet.decode():
                samples += frame.samples
                rate = frame.sample_rate
        ctx = stream.codec_context
        return samples * 1000 / rate, ctx.channels, packets, container.format.name, ctx.name


def leftovers(directory: Path, keep: Path | None = None) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p != keep)


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_good_file_becomes_ogg_opus_with_duration_and_waveform(
    corpus: Corpus, tmp_path: Path, name: str
) -> None:
    sample = corpus.good[name]
    dst = tmp_path / "out.ogg"
    result = process(sample.path, dst, LIMITS)

    assert leftovers(tmp_path, keep=dst) == []
    out_ms, out_channels, out_packets, out_container, out_codec = decoded(dst)
    src_ms, src_channels, src_packets, _, _ = decoded(sample.path)
    assert (out_container, out_codec) == ("ogg", "opus")
    assert result.content_type == OGG_OPUS == "audio/ogg; codecs=opus"

    padding = 0 if sample.remux else TRANSCODE_PADDING_MS
    assert abs(out_ms - src_ms) <= min(0.01 * src_ms, 20 + padding), (out_ms, src_ms)
    assert abs(result.duration_ms - out_ms) <= 20

    assert result.remuxed is sample.remux
    if sample.remux:
        assert out_packets == src_packets
        assert out_channels == result.channels == src_channels
    else:
        assert out_channels == result.channels == 1
    assert "/" in result.source_format

    wave = result.waveform
    assert len(wave) == 64
    assert all(isinstance(v, int) and 0 <= v <= 255 for v in wave)
    if sample.signal == "silence":
        assert max(wave) <= 3, wave
    else:
        assert max(wave) >= 200, wave
        assert max(wave) - min(wave) >= 100, wave
        assert len(set(wave)) >= 8, wave


def test_remux_keeps_every_packet_byte_for_byte(corpus: Corpus, tmp_path: Path) -> None:
    src = corpus.good["webm_opus_chromium"].path
    dst = tmp_path / "out.ogg"
    process(src, dst, LIMITS)

    def payloads(path: Path) -> list[bytes]:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            return [bytes(p) for p in container.demux(stream) if p.size]

    assert payloads(dst) == payloads(src)


def test_remuxed_ogg_has_sample_exact_granules(corpus: Corpus, tmp_path: Path) -> None:
    """Chromium's jittery millisecond timestamps must not leak into the Ogg granules."""
    dst = tmp_path / "out.ogg"
    process(corpus.good["webm_opus_chromium"].path, dst, LIMITS)
    with av.open(str(dst)) as container:
        stream = container.streams.audio[0]
        pts = [p.pts for p in container.demux(stream) if p.size]
    steps = {b - a for a, b in itertools.pairwise(pts)}
    assert steps == {2880}  # 60 ms packets at 48 kHz, no jitter


def test_output_is_deterministic(corpus: Corpus, tmp_path: Path) -> None:
    """Same upload, same bytes: the content-addressed store keeps one copy."""
    for name in ("webm_opus_chromium", "m4a_aac"):
        a, b = tmp_path / f"{name}-a.ogg", tmp_path / f"{name}-b.ogg"
        process(corpus.good[name].path, a, LIMITS)
        process(corpus.good[name].path, b, LIMITS)
        assert a.read_bytes() == b.read_bytes()


EXPECTED_REFUSALS: dict[str, type[MediaError]] = {
    "empty": InvalidMedia,
    "truncated_ogg": InvalidMedia,
    "png_as_opus": NotAudio,
    # Headers that claim more than the file holds are not trusted: decoding finds the file
    # cut short, which is what is wrong with it.
    "wav_claims_10h": InvalidMedia,
    "ogg_claims_10h": InvalidMedia,
    "random": NotAudio,
    "video_only": InvalidMedia,
}


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_file_is_refused_and_leaves_nothing(corpus: Corpus, tmp_path: Path, name: str) -> None:
    dst = tmp_path / "out.ogg"
    started = time.monotonic()
    with pytest.raises(MediaError) as caught:
        process(corpus.bad[name], dst, LIMITS)
    assert type(caught.value) is EXPECTED_REFUSALS[name], caught.value
    assert time.monotonic() - started < 2
    assert str(caught.value)
    assert str(tmp_path) not in str(caught.value)
    assert leftovers(tmp_path) == []


def test_refusal_messages_say_what_is_wrong(corpus: Corpus, tmp_path: Path) -> None:
    def message(name: str, limits: MediaLimits = LIMITS) -> str:
        with pytest.raises(MediaError) as caught:
            process(corpus.bad[name], tmp_path / "out.ogg", limits)
        return str(caught.value)

    assert "empty" in message("empty")
    assert "truncated" in message("truncated_ogg")
    assert "no audio track" in message("video_only")
    # A claim of more than the file holds is measured, whatever the limit: truncated.
    assert "truncated" in message("ogg_claims_10h") and "10:00:00" in message("ogg_claims_10h")
    roomy = MediaLimits(max_duration_ms=11 * 3_600_000, max_decode_seconds=60)
    assert "truncated" in message("wav_claims_10h", roomy)
    assert "truncated" in message("wav_claims_10h")


def test_truncated_ogg_is_accepted_when_the_caller_allows_it(
    corpus: Corpus, tmp_path: Path
) -> None:
    """A recording whose upload stopped mid-chunk: keep what was recorded."""
    dst = tmp_path / "out.ogg"
    result = process(corpus.bad["truncated_ogg"], dst, LIMITS, allow_truncated=True)
    full_ms = decoded(corpus.good["ogg_opus"].path)[0]
    assert 0.3 * full_ms < result.duration_ms < 0.7 * full_ms
    assert abs(decoded(dst)[0] - result.duration_ms) <= 20


def test_a_header_claiming_more_than_the_file_holds_is_measured(tmp_path: Path) -> None:
    """A WAV that says 6 hours and holds 2 s, under a 1-minute limit: a recording cut short
    (allowed) is kept at what it holds, not refused for what it claims."""
    src = tmp_path / "liar.wav"
    wav_claiming(src, seconds_claimed=6 * 3600, seconds_held=2)
    info = probe(src)
    assert info.duration_ms == 6 * 3_600_000 and info.credible_duration_ms is None
    limits = MediaLimits(max_duration_ms=60_000, max_decode_seconds=60)
    result = process(src, tmp_path / "out.ogg", limits, allow_truncated=True)
    assert abs(result.duration_ms - 2_000) <= 20


def test_truncated_m4a_is_invalid(corpus: Corpus, tmp_path: Path) -> None:
    data = corpus.good["m4a_aac"].path.read_bytes()
    src = tmp_path / "cut.m4a"
    src.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(MediaError):
        process(src, tmp_path / "out.ogg", LIMITS)
    assert leftovers(tmp_path, keep=src) == []


@pytest.mark.parametrize(
    ("kind", "make"),
    [
        ("wav: claimed in the header", lambda p: wav(p, seconds=5)),
        ("webm from a recorder: no duration", lambda p: chromium_webm(p, seconds=5)),
        ("adts aac: claim estimated", lambda p: encode(p, "adts", "aac", seconds=5)),
    ],
)
def test_over_the_duration_limit_is_too_long_quickly(
    tmp_path: Path, kind: str, make: Callable[[Path], object]
) -> None:
    src = tmp_path / "five-seconds"
    make(src)
    limits = MediaLimits(max_duration_ms=2_000, max_decode_seconds=60)
    started = time.monotonic()
    with pytest.raises(TooLong) as caught:
        process(src, tmp_path / "out.ogg", limits)
    assert time.monotonic() - started < 0.5, kind
    assert caught.value.limit_ms == 2_000
    assert "0:02" in str(caught.value)
    assert leftovers(tmp_path, keep=src) == []


def test_decode_time_bound(corpus: Corpus, tmp_path: Path) -> None:
    limits = MediaLimits(max_duration_ms=60_000, max_decode_seconds=1e-9)
    for name in ("m4a_aac", "webm_opus_chromium"):
        with pytest.raises(DecodeTimeout):
            process(corpus.good[name].path, tmp_path / "out.ogg", limits)
    assert leftovers(tmp_path) == []


def test_memory_stays_flat_on_a_ten_minute_file(tmp_path: Path) -> None:
    src = tmp_path / "ten-minutes.wav"
    wav(src, seconds=600, rate=8_000)  # written in 10 s chunks, never whole in memory
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    try:
        result = process(src, tmp_path / "out.ogg", LIMITS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert result.duration_ms == 600_000
    assert peak < 5 * 2**20, f"Python-side peak {peak / 2**20:.1f} MiB"
    assert rss_growth_mb < 50, f"peak RSS grew {rss_growth_mb:.0f} MiB"


def test_probe_reports_what_the_headers_say(corpus: Corpus) -> None:
    webm = probe(corpus.good["webm_opus_chromium"].path)
    assert (webm.container, webm.codec, webm.is_opus) == ("matroska,webm", "opus", True)
    assert webm.duration_ms is None  # a streamed recording has no duration in its header
    assert (webm.channels, webm.sample_rate, webm.has_audio, webm.has_video) == (
        1,
        48_000,
        True,
        False,
    )

    m4a = probe(corpus.good["m4a_aac"].path)
    assert (m4a.codec, m4a.is_opus, m4a.sample_rate) == ("aac", False, 44_100)
    assert m4a.duration_ms is not None and abs(m4a.duration_ms - 2_500) < 50

    video = probe(corpus.good["mp4_video"].path)
    assert video.has_audio and video.has_video

    no_audio = probe(corpus.bad["video_only"])
    assert (no_audio.has_audio, no_audio.has_video, no_audio.codec) == (False, True, None)

    assert probe(corpus.bad["ogg_claims_10h"]).duration_ms == pytest.approx(36_000_000, abs=10)
    assert probe(corpus.bad["wav_claims_10h"]).duration_ms == 36_000_000
    # ... which is more than their bytes can hold: not credible.
    assert probe(corpus.bad["ogg_claims_10h"]).credible_duration_ms is None
    assert probe(corpus.bad["wav_claims_10h"]).credible_duration_ms is None
    assert m4a.credible_duration_ms == m4a.duration_ms

    with pytest.raises(NotAudio):
        probe(corpus.bad["png_as_opus"])
    with pytest.raises(NotAudio):
        probe(corpus.bad["random"])
    with pytest.raises(InvalidMedia):
        probe(corpus.bad["empty"])


def test_render_mp3(corpus: Corpus, tmp_path: Path) -> None:
    ogg = tmp_path / "voice.ogg"
    result = process(corpus.good["ogg_opus_stereo"].path, ogg, LIMITS)
    mp3 = tmp_path / "voice.mp3"
    render_mp3(ogg, mp3)
    assert leftovers(tmp_path) == ["voice.mp3", "voice.ogg"]
    ms, channels, _, container, codec = decoded(mp3)
    assert (container, channels) == ("mp3", 1)
    assert codec.startswith("mp3")
    assert abs(ms - result.duration_ms) <= 30  # LAME's own padding is trimmed via its header


def test_render_mp3_of_garbage_leaves_nothing(corpus: Corpus, tmp_path: Path) -> None:
    with pytest.raises(MediaError):
        render_mp3(corpus.bad["random"], tmp_path / "x.mp3")
    assert leftovers(tmp_path) == []


def test_damaged_files_give_media_errors_only(corpus: Corpus, tmp_path: Path) -> None:
    """Bit flips and cuts anywhere: a result or a MediaError, never another exception, and
    never anything left behind."""
    rng = random.Random(7)
    names = ["webm_opus_chromium", "ogg_opus", "m4a_aac", "mp3", "flac", "amr", "mka_opus"]
    outcomes: set[str] = set()
    for i in range(60):
        data = bytearray(corpus.good[names[i % len(names)]].path.read_bytes())
        for _ in range(rng.randint(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if i % 3 == 0:
            data = data[: rng.randrange(1, len(data))]
        src = tmp_path / "in"
        src.write_bytes(bytes(data))
        dst = tmp_path / "out.ogg"
        try:
            result = process(src, dst, LIMITS)
        except MediaError as exc:
            outcomes.add(type(exc).__name__)
            assert leftovers(tmp_path, keep=src) == []
        else:
            outcomes.add("ok")
            assert len(result.waveform) == 64 and result.duration_ms > 0
            dst.unlink()
    assert {"ok", "InvalidMedia"} <= outcomes
