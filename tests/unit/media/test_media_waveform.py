"""The waveform accumulator and scale, and the Opus packet arithmetic, on synthetic data."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from voxbox.media.opus import OpusHead, packet_samples
from voxbox.media.waveform import WAVEFORM_BARS, PeakAccumulator, level


def brute_force_peaks(x: np.ndarray, bars: int) -> list[float]:
    edges = [j * len(x) // bars for j in range(bars + 1)]
    return [float(np.abs(x[a : max(b, a + 1)]).max()) for a, b in itertools.pairwise(edges)]


@pytest.mark.parametrize("seconds", [0.01, 0.3, 2.5, 61.0, 600.0])
def test_peaks_match_a_brute_force_computation(seconds: float) -> None:
    rng = np.random.default_rng(int(seconds * 100))
    n = int(seconds * 48_000)
    # Sparse spikes make any misplaced bucket edge visible.
    x = (rng.standard_normal(n) * 0.01).astype(np.float32)
    spikes = rng.integers(0, n, size=max(1, n // 20_000))
    x[spikes] = rng.uniform(0.2, 1.0, size=len(spikes)).astype(np.float32)
    acc = PeakAccumulator(960)
    pos = 0
    while pos < n:  # frames of varying size, as decoders deliver them
        step = int(rng.integers(100, 5000))
        acc.add(x[pos : pos + step])
        pos += step
    got = acc.peaks()
    exact = brute_force_peaks(x, WAVEFORM_BARS)
    # Each bar may also see the fine bucket its edges fall into (at most 1/512 of the total).
    slack = max(960, n // 512) * 2
    for j, (g, e) in enumerate(zip(got, exact, strict=True)):
        lo, hi = max(0, j * n // 64 - slack), min(n, (j + 1) * n // 64 + slack)
        assert e <= g + 1e-6 and g <= float(np.abs(x[lo:hi]).max()) + 1e-6, (j, g, e)
    assert acc.samples == n


def test_planar_channels_take_the_louder_one() -> None:
    acc = PeakAccumulator(960)
    left = np.zeros(48_000, dtype=np.float32)
    right = np.full(48_000, 0.5, dtype=np.float32)
    acc.add(np.vstack([left, right]))
    assert acc.peaks() == [0.5] * 64


def test_empty_and_silent_input_give_flat_zero() -> None:
    assert PeakAccumulator(960).bars() == [0] * 64
    acc = PeakAccumulator(960)
    acc.add(np.zeros(100_000, dtype=np.float32))
    assert acc.bars() == [0] * 64


def test_level_is_a_60_db_window_under_full_scale() -> None:
    assert level(1.0) == 255
    assert level(4.0) == 255  # float decoders can overshoot full scale
    assert level(10 ** (-30 / 20)) == 128
    assert level(10 ** (-60 / 20)) == 0
    assert level(1e-6) == 0
    assert level(0.0) == 0
    assert level(float("nan")) == 0
    assert [level(10 ** (-d / 20)) for d in (6, 20, 40)] == [230, 170, 85]


def test_opus_packet_durations_from_the_toc_byte() -> None:
    assert packet_samples(b"\xf8\xff\xfe") == 960  # CELT 20 ms, one frame
    assert packet_samples(b"\xf9\x00") == 1920  # two frames
    assert packet_samples(b"\x0b\x03") == 2880  # SILK 20 ms, code 3, three frames
    assert packet_samples(b"\xe0") == 120  # CELT 2.5 ms
    assert packet_samples(b"\x18") == 2880  # SILK 60 ms
    with pytest.raises(ValueError):
        packet_samples(b"")
    with pytest.raises(ValueError):
        packet_samples(b"\x1b\x03")  # 3 x 60 ms > 120 ms
    with pytest.raises(ValueError):
        packet_samples(b"\x0b")  # code 3 without its count byte


def test_opus_head() -> None:
    head = OpusHead.parse(b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00")
    assert (head.channels, head.pre_skip) == (2, 312)
    with pytest.raises(ValueError):
        OpusHead.parse(b"OpusTags" + b"\x00" * 11)
