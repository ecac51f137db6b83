#!/usr/bin/env python3
"""Transcription benchmark (issue 11): word error rate and real-time factor on real speech.

The LibriVox clips in ``tests/fixtures/librivox`` (from pocketsphinx's source distribution,
with their reference texts). Two paths, each on one core:

- ``plain``: pocketsphinx fed the clips' 16 kHz samples directly, one utterance per clip (what
  pocketsphinx's own tests do): the baseline;
- ``voxbox``: what a voice note goes through: the clip stored as Ogg/Opus by the pipeline, then
  ``voxbox.media.transcribe`` (decode, resample, normalize, split on silences, recognize). The
  RTF counts all of that but the storing.

WER is jiwer's over all clips together, on lower-case words (the references are lower case).
RTF is CPU seconds per second of audio, the median of ``--runs`` runs.

    .venv/bin/python benchmarks/transcribe.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import jiwer
import numpy as np

from messaging import machine_info
from voxbox.media import MediaLimits, process
from voxbox.media.transcribe import PocketsphinxEngine, speech_pcm, transcribe

CLIPS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "librivox"


def plain(engine: PocketsphinxEngine, clip: Path) -> tuple[str, float]:
    pcm = speech_pcm(clip)  # the FLAC's own 16 kHz samples: nothing is resampled
    started = time.process_time()
    words = engine.recognize(pcm)
    return " ".join(w.w for w in words), time.process_time() - started


def voxbox(engine: PocketsphinxEngine, ogg: Path) -> tuple[str, float]:
    started = time.process_time()
    text = transcribe(ogg, engine).text
    return text, time.process_time() - started


def seconds_of(clip: Path) -> float:
    with av.open(str(clip)) as container:
        stream = container.streams.audio[0]
        return float(stream.duration * stream.time_base) if stream.duration else 0.0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args(argv)
    clips = sorted(CLIPS.glob("*.flac"))
    references = [clip.with_suffix(".txt").read_text().strip() for clip in clips]
    audio = sum(seconds_of(clip) for clip in clips)
    engine = PocketsphinxEngine()
    with tempfile.TemporaryDirectory() as tmp:
        stored = []
        for clip in clips:
            ogg = Path(tmp) / f"{clip.stem}.ogg"
            process(clip, ogg, MediaLimits(max_duration_ms=600_000, max_decode_seconds=600))
            stored.append(ogg)
        info = machine_info()
        print(f"machine: {info['nproc']} CPUs, {info['cpu']}; {len(clips)} clips, {audio:.1f} s")
        for name, run, inputs in (("plain", plain, clips), ("voxbox", voxbox, stored)):
            rtfs, hypotheses = [], []
            for _ in range(args.runs):
                results = [run(engine, path) for path in inputs]
                hypotheses = [text for text, _ in results]
                rtfs.append(sum(cpu for _, cpu in results) / audio)
            wer = jiwer.wer(references, hypotheses)
            print(f"{name:>7}: WER {100 * wer:.1f}%  RTF {statistics.median(rtfs):.3f}")
            if name == "voxbox":
                for reference, hypothesis in zip(references, hypotheses, strict=True):
                    print(f"    ref: {reference}\n    hyp: {hypothesis}")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main(sys.argv[1:]))
