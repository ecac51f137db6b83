"""StreamingOpusAnalyzer: a recording decoded while it uploads, reused by process()."""

from __future__ import annotations

from pathlib import Path

import pytest
from media_corpus import Corpus, chromium_webm

from voxbox.media import MediaLimits, StreamingOpusAnalyzer, TooLong, process
from voxbox.media.opus import OpusPeakMeter

LIMITS = MediaLimits(max_duration_ms=60 * 60_000, max_decode_seconds=60)


def fed(data: bytes | list[bytes], step: int = 777) -> StreamingOpusAnalyzer:
    """An analyzer fed `data` in `step`-byte chunks (or the given pieces)."""
    analyzer = StreamingOpusAnalyzer()
    if isinstance(data, bytes):
        data = [data[i : i + step] for i in range(0, len(data), step)]
    pieces = data
    for piece in pieces:
        analyzer.feed(piece)
    return analyzer


@pytest.mark.parametrize(
    "name",
    [
        "webm_opus_chromium",
        "webm_pieces",
        "webm_opus_no_codec_delay",
        "ogg_opus",
        "ogg_opus_stereo",
        "mka_opus",
    ],
)
def test_finishing_with_the_analyzer_gives_the_same_result_and_bytes(
    corpus: Corpus, tmp_path: Path, name: str
) -> None:
    src = corpus.good[name].path
    plain = process(src, tmp_path / "plain.ogg", LIMITS)
    analyzer = fed(src.read_bytes())
    assert analyzer.active, analyzer.inactive_reason
    assert abs(analyzer.duration_ms - plain.duration_ms) <= 60  # before end trimming
    assert analyzer.waveform() == plain.waveform  # the padding trimmed at the end is silent

    helped = process(src, tmp_path / "helped.ogg", LIMITS, analyzer=analyzer)
    assert helped == plain
    assert (tmp_path / "helped.ogg").read_bytes() == (tmp_path / "plain.ogg").read_bytes()
    assert not analyzer.active  # consumed


def test_the_recorders_own_pieces_can_be_fed(corpus: Corpus, tmp_path: Path) -> None:
    """The 1 s pieces a MediaRecorder hands over, each PATCHed as it comes."""
    src = corpus.good["webm_pieces"].path
    analyzer = StreamingOpusAnalyzer()
    durations = []
    for piece in corpus.pieces:
        analyzer.feed(piece)
        durations.append(analyzer.duration_ms)
    assert durations == sorted(durations) and durations[-1] > 2_000
    assert process(src, tmp_path / "a.ogg", LIMITS, analyzer=analyzer) == process(
        src, tmp_path / "b.ogg", LIMITS
    )


def test_a_partly_fed_analyzer_is_finished_by_process(corpus: Corpus, tmp_path: Path) -> None:
    """The server was fed all but the last chunks (the final PATCH comes with the send)."""
    src = corpus.good["webm_opus_chromium"].path
    data = src.read_bytes()
    analyzer = fed(data[: len(data) // 2])
    assert 500 < analyzer.duration_ms < 2_000
    helped = process(src, tmp_path / "a.ogg", LIMITS, analyzer=analyzer)
    assert helped == process(src, tmp_path / "b.ogg", LIMITS)


def test_an_analyzer_of_another_file_is_ignored(corpus: Corpus, tmp_path: Path) -> None:
    other = fed(corpus.good["webm_opus_silence"].path.read_bytes())
    src = corpus.good["webm_opus_chromium"].path
    assert process(src, tmp_path / "a.ogg", LIMITS, analyzer=other) == process(
        src, tmp_path / "b.ogg", LIMITS
    )
    assert [p.name for p in tmp_path.iterdir()] in (["a.ogg", "b.ogg"], ["b.ogg", "a.ogg"])


def test_an_analyzer_fed_more_than_the_file_is_ignored(corpus: Corpus, tmp_path: Path) -> None:
    src = corpus.good["ogg_opus"].path
    data = src.read_bytes()
    cut = tmp_path / "cut.opus"
    cut.write_bytes(data[: len(data) // 2])
    analyzer = fed(data)
    helped = process(cut, tmp_path / "a.ogg", LIMITS, analyzer=analyzer, allow_truncated=True)
    assert helped == process(cut, tmp_path / "b.ogg", LIMITS, allow_truncated=True)


def test_the_analyzer_stays_out_of_the_way_for_other_formats(corpus: Corpus) -> None:
    for name in ("m4a_aac", "mp3", "webm_vorbis"):
        analyzer = fed(corpus.good[name].path.read_bytes())
        assert not analyzer.active
        assert analyzer.inactive_reason
        assert analyzer.duration_ms == 0
        assert analyzer.waveform() == [0] * 64


def test_garbage_makes_the_analyzer_inactive_not_raise() -> None:
    analyzer = fed(b"OggS" + b"\xff" * 5000)
    assert not analyzer.active
    analyzer = fed(b"\x1aE\xdf\xa3" + b"\x00" * 100)
    assert not analyzer.active


def test_the_analyzer_enforces_the_duration_limit_while_recording(tmp_path: Path) -> None:
    src = tmp_path / "five.webm"
    chromium_webm(src, seconds=5)
    limits = MediaLimits(max_duration_ms=2_000, max_decode_seconds=60)
    analyzer = StreamingOpusAnalyzer(limits)
    data = src.read_bytes()
    sent = 0
    with pytest.raises(TooLong):
        while sent < len(data):
            sent += 1000
            analyzer.feed(data[sent - 1000 : sent])
    assert sent < len(data) * 0.7  # refused as soon as it passed 2 s, not at the end
    assert not analyzer.active


def test_process_decodes_only_what_the_analyzer_has_not(
    corpus: Corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = corpus.good["webm_opus_chromium"].path
    data = src.read_bytes()
    decoded: list[int] = []
    original = OpusPeakMeter.decode

    def counting(self: OpusPeakMeter, payload: bytes) -> None:
        decoded.append(len(payload))
        original(self, payload)

    full, half = fed(data), fed(data[: len(data) // 2])
    total_packets = full.packets
    monkeypatch.setattr(OpusPeakMeter, "decode", counting)

    process(src, tmp_path / "a.ogg", LIMITS, analyzer=full)
    assert decoded == []  # everything was decoded during the upload
    process(src, tmp_path / "b.ogg", LIMITS, analyzer=half)
    assert 0 < len(decoded) < total_packets
    decoded.clear()
    process(src, tmp_path / "c.ogg", LIMITS)
    assert len(decoded) == total_packets
