"""Speech to text for voice notes: decode, resample, normalize, split on silences, recognize.

Pure and synchronous like the rest of ``media``: a file in, a ``Transcript`` out. The engine is
pluggable (``Engine``, made by ``make_engine``): ``PocketsphinxEngine`` works offline with the
English model its wheel ships, ``WhisperEngine`` (faster-whisper) with a model directory. Nothing
is downloaded. Engines hold the GIL while they work and are not thread-safe: the server runs
them in processes of their own (core/transcripts.py).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import av
import numpy as np

from voxbox.media.errors import InvalidMedia

RATE = 16_000  # what speech models take
FRAME_MS = 10  # pocketsphinx's frame rate: 100 a second
_LEVEL = 0.3  # normalized speech peaks at this fraction of full scale
_WINDOW_MS = 30  # the silence detector's window
_MIN_SILENCE_MS = 500  # a pause at least this long may end an utterance
_MIN_UTTERANCE_S = 4.0  # shorter pieces keep going into the next (the model wants context)
_MAX_UTTERANCE_S = 20.0  # longer ones are cut at their quietest pause
_FLOOR_DB = 40.0  # mean power (dB of int16 units) below which a window holds nothing (-50 dBFS)


@dataclass(frozen=True)
class Word:
    w: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    words: list[Word]


class Engine(Protocol):
    def recognize(self, pcm: np.ndarray) -> tuple[list[Word], str]:
        """The words of normalized speech (16 kHz mono int16), timed from its start, and the
        language they are in."""
        ...


class ModelMissing(Exception):
    """The engine's model is not where the settings say."""


def transcribe(path: Path, engine: Engine) -> Transcript:
    """The transcript of the speech in the audio file at ``path`` (any format PyAV reads)."""
    words, language = engine.recognize(normalize(speech_pcm(path)))
    return Transcript(" ".join(word.w for word in words), language, words)


def check_model(engine: str, model_dir: Path) -> None:
    """Raise ``ModelMissing`` unless ``model_dir`` holds what ``engine`` loads (it is not
    loaded: a damaged model fails each transcription instead, with its reason)."""
    if engine == "faster-whisper":
        needed = [model_dir / "model.bin", model_dir / "config.json"]
        missing = [path for path in needed if not path.is_file()]
        if missing:
            raise ModelMissing(
                f"no faster-whisper model in {model_dir}: {missing[0].name} is missing "
                "(a CTranslate2 Whisper model directory is needed; nothing is downloaded)"
            )
    else:
        _sphinx_files(model_dir)


def make_engine(engine: str, model_dir: Path | None) -> Engine:
    if engine == "faster-whisper":
        assert model_dir is not None
        return WhisperEngine(model_dir)
    return PocketsphinxEngine(model_dir)


def speech_pcm(path: Path) -> np.ndarray:
    """The file's first audio stream as 16 kHz mono int16 samples."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    pieces: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(audio=0):
                pieces += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
            pieces += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    except (av.FFmpegError, ValueError, IndexError) as exc:
        raise InvalidMedia(f"cannot decode the audio for a transcript: {exc}") from exc
    return np.concatenate(pieces).astype(np.int16) if pieces else np.zeros(0, np.int16)


def normalize(pcm: np.ndarray) -> np.ndarray:
    """Scale so that speech peaks (the 99.9th percentile, not a lone click) reach ``_LEVEL``."""
    if pcm.size == 0:
        return pcm
    x = pcm.astype(np.float32)
    peak = float(np.percentile(np.abs(x), 99.9))
    if peak < 1.0:
        return pcm
    return np.clip(x * (_LEVEL * 32767 / peak), -32768, 32767).astype(np.int16)


def utterances(pcm: np.ndarray) -> list[tuple[int, int]]:
    """Sample ranges to recognize one at a time: cut in the middle of pauses of at least
    ``_MIN_SILENCE_MS``, into pieces of ``_MIN_UTTERANCE_S`` to ``_MAX_UTTERANCE_S`` where the
    pauses allow. A pause is a run of windows quieter than the noise floor + 10 dB; a piece
    with no window above ``_FLOOR_DB`` is left out (a recognizer hears words in silence)."""
    window = RATE * _WINDOW_MS // 1000
    n = pcm.size // window
    if n == 0:
        return [(0, pcm.size)] if pcm.size else []
    frames = pcm[: n * window].astype(np.float32).reshape(n, window)
    db = 10 * np.log10(np.mean(frames**2, axis=1) + 1.0)
    quiet = db < np.percentile(db, 10) + 10.0
    pauses = _runs(quiet, _MIN_SILENCE_MS // _WINDOW_MS)  # (first window, past last)
    cuts = [((a + b) // 2) * window for a, b in pauses if a > 0 and b < n]
    ranges, start = [], 0
    for cut in cuts:
        if (cut - start) / RATE >= _MIN_UTTERANCE_S:
            ranges.append((start, cut))
            start = cut
    ranges.append((start, pcm.size))
    pieces = [piece for r in ranges for piece in _at_most(r, db, window)]
    return [(a, b) for a, b in pieces if np.any(db[a // window : -(-b // window)] > _FLOOR_DB)]


def _runs(flags: np.ndarray, min_length: int) -> list[tuple[int, int]]:
    """[start, end) of the runs of True at least ``min_length`` long."""
    edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True) if b - a >= min_length]


def _at_most(piece: tuple[int, int], db: np.ndarray, window: int) -> list[tuple[int, int]]:
    """``piece`` cut at its quietest window until no part is longer than the maximum."""
    start, end = piece
    if (end - start) / RATE <= _MAX_UTTERANCE_S:
        return [piece]
    lo = start // window + int(_MIN_UTTERANCE_S * 1000 / _WINDOW_MS)
    hi = min(end // window, db.size) - int(_MIN_UTTERANCE_S * 1000 / _WINDOW_MS)
    cut = (lo + int(np.argmin(db[lo:hi]))) * window if hi > lo else (start + end) // 2
    return _at_most((start, cut), db, window) + _at_most((cut, end), db, window)


_FILLERS = re.compile(r"^(<s>|</s>|<sil>|<unk>|\[.*\])$")
_ALTERNATE = re.compile(r"\(\d+\)$")  # "the(2)": the dictionary's second pronunciation


def _sphinx_files(model_dir: Path) -> dict[str, str]:
    """A pocketsphinx model directory's acoustic model, language model and dictionary, laid out
    like the one in the wheel (``en-us/``, ``en-us.lm.bin``, ``cmudict-en-us.dict``)."""
    if not model_dir.is_dir():
        raise ModelMissing(f"no pocketsphinx model: {model_dir} is not a directory")
    found = {
        "hmm": next((p for p in sorted(model_dir.iterdir()) if p.is_dir()), None),
        "lm": next((p for p in sorted(model_dir.glob("*.lm.bin")) if "-phone" not in p.name), None),
        "dict": next(iter(sorted(model_dir.glob("*.dict"))), None),
    }
    what = {"hmm": "acoustic model directory", "lm": "*.lm.bin file", "dict": "*.dict file"}
    for key, path in found.items():
        if path is None:
            raise ModelMissing(f"no pocketsphinx model in {model_dir}: it has no {what[key]}")
    return {key: str(path) for key, path in found.items()}


class PocketsphinxEngine:
    """CMU pocketsphinx: the US English model in its wheel, or one in ``model_dir``. It hears
    words in noise, so speech is cut into utterances first and silence is never fed to it."""

    def __init__(self, model_dir: Path | None = None) -> None:
        from pocketsphinx import Decoder  # its model loads in ~0.3 s: only when wanted

        files = {} if model_dir is None else _sphinx_files(model_dir)
        # No flat-lexicon second pass: on the LibriVox clips it cost words on every path (FLAC
        # 28.2% -> 26.8% WER without it, stored Ogg/Opus 31.0% -> 25.4%, a recording 26.8% ->
        # 22.5%; docs/benchmarks.md), and it takes time.
        self._decoder = Decoder(samprate=RATE, fwdflat=False, **files)
        self._lock = threading.Lock()

    def recognize(self, pcm: np.ndarray) -> tuple[list[Word], str]:
        words: list[Word] = []
        for start, end in utterances(pcm):
            offset = start * 1000 // RATE
            words += [
                Word(word.w, word.start_ms + offset, word.end_ms + offset)
                for word in self._utterance(pcm[start:end])
            ]
        return words, "en"

    def _utterance(self, pcm: np.ndarray) -> list[Word]:
        with self._lock:
            decoder = self._decoder
            decoder.start_utt()
            decoder.process_raw(pcm.tobytes(), full_utt=True)
            decoder.end_utt()
            segments = [(s.word, s.start_frame, s.end_frame) for s in decoder.seg()]
        return [
            Word(_ALTERNATE.sub("", word), start * FRAME_MS, (end + 1) * FRAME_MS)
            for word, start, end in segments
            if not _FILLERS.match(word)
        ]


class WhisperEngine:
    """faster-whisper (CTranslate2) with the model in ``model_dir``, on the CPU, int8; it finds
    the language itself and skips silence with its own voice-activity filter."""

    def __init__(self, model_dir: Path, threads: int = 0) -> None:
        from faster_whisper import WhisperModel  # the optional extra voxbox[whisper]

        check_model("faster-whisper", model_dir)
        self._model = WhisperModel(
            str(model_dir),
            device="cpu",
            compute_type="int8",
            cpu_threads=threads,  # 0: CTranslate2's default
            local_files_only=True,  # never the network
        )

    def recognize(self, pcm: np.ndarray) -> tuple[list[Word], str]:
        audio = pcm.astype(np.float32) / 32768.0
        segments, info = self._model.transcribe(audio, word_timestamps=True, vad_filter=True)
        words = [
            Word(word.word.strip(), round(word.start * 1000), round(word.end * 1000))
            for segment in segments
            for word in segment.words or []
            if word.word.strip()
        ]
        return words, info.language


class EngineFailed(Exception):
    """The engine could not start (a damaged model) or died (its process ended)."""


# A transcription process's engine, made once when the process starts (``load_engine``): a model
# takes a while to load, and one that cannot load makes every transcription fail with its reason.
_engine: Engine | None = None
_engine_error = "the engine was not loaded"


def load_engine(name: str, model_dir: str | None) -> None:
    """A transcription process's initializer (see core/transcripts.Transcriber)."""
    global _engine, _engine_error
    try:
        _engine = make_engine(name, Path(model_dir) if model_dir else None)
    except Exception as exc:  # a damaged model raises anything at all
        _engine_error = f"{type(exc).__name__}: {exc}".strip()


def transcribe_in_process(path: str) -> Transcript:
    """Transcribe with this process's engine (in a transcription process). Every failure is an
    ``EngineFailed`` in words a user may read (no paths); ``InvalidMedia`` for audio that
    cannot be decoded."""
    if _engine is None:
        raise EngineFailed(f"The transcription engine could not start: {_engine_error}")
    try:
        return transcribe(Path(path), _engine)
    except InvalidMedia:
        raise InvalidMedia("The audio could not be decoded for a transcript.") from None
    except MemoryError:
        raise EngineFailed("The transcription ran out of memory.") from None
    except Exception as exc:  # the engine's own failure, whatever it is
        raise EngineFailed(f"The transcription engine failed: {type(exc).__name__}.") from None
