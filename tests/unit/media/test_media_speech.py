"""Real speech (espeak-ng, padded with 0.5 s of silence by sox) through the pipeline."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from voxbox.media import MediaLimits, process

LIMITS = MediaLimits(max_duration_ms=60 * 60_000, max_decode_seconds=60)


def decoded_ms(path: Path) -> float:
    with av.open(str(path)) as container:
        samples, rate = 0, 1
        for frame in container.decode(audio=0):
            samples, rate = samples + frame.samples, frame.sample_rate
    return samples * 1000 / rate


@pytest.mark.parametrize("kind", ["wav", "m4a", "opus"])
def test_speech_keeps_its_duration_and_draws_a_speech_waveform(
    speech: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    src = speech[kind]
    dst = tmp_path / "voice.ogg"
    result = process(src, dst, LIMITS)
    src_ms = decoded_ms(src)
    assert result.remuxed is (kind == "opus")
    assert abs(decoded_ms(dst) - src_ms) <= min(0.01 * src_ms, 45)
    assert abs(result.duration_ms - src_ms) <= 20

    wave = result.waveform
    # 0.5 s of silence at each end of a ~5 s clip: the first and last bars are (near) flat.
    assert wave[0] <= 20 and wave[-1] <= 20, wave
    middle = wave[12:-12]
    assert max(middle) >= 180, wave
    assert len(set(middle)) >= 10, wave
