"""The 64-bar waveform: running peaks in bounded memory, reduced and scaled at the end.

Choice of scale: each bar is the *peak* absolute sample value over its 1/64 of the duration,
expressed in dBFS and mapped linearly from a 60 dB window to 0..255: full scale (0 dBFS) is 255,
-30 dBFS is 128, -60 dBFS and below (and digital silence) is 0. A logarithmic scale is what an
ear (and Audacity's "dB" waveform view, whose default range is also 60 dB) expects: a quiet phone
recording peaking at -20 dBFS still draws clearly varied bars (syllables ~150-200, pauses with
room noise ~20-60) instead of a flat line at 10 % height, while silence stays flat at 0 and the
scale stays absolute (no per-recording normalisation, which would blow up a recording of pure
background noise into "speech"). Clients that want more contrast can rescale; the stored values
keep their meaning.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

WAVEFORM_BARS = 64
FLOOR_DBFS = -60.0

# The accumulator keeps at most this many fine peaks. When full, neighbours are merged pairwise
# and the block doubles, so memory is constant whatever the duration, and each fine bucket stays
# at most 1/512 of the total: fine enough to place 64 bar edges precisely.
_CAPACITY = 1024


class PeakAccumulator:
    """Running maximum of |sample| over consecutive blocks of `block` samples.

    Feed decoded audio in order with `add`; read `bars()` (or `peaks()`) at any time. Audio is
    buffered up to about `batch` samples so NumPy runs once per second of audio rather than once
    per 20 ms frame. Not thread-safe; memory is O(batch), whatever the duration.
    """

    def __init__(self, block: int, batch: int = 48_000) -> None:
        if block <= 0:
            raise ValueError("block must be positive")
        self._block = block
        self._batch = batch
        self._peaks = np.zeros(_CAPACITY, dtype=np.float32)
        self._count = 0  # complete fine buckets in _peaks
        self._cur = 0.0  # peak of the incomplete bucket
        self._fill = 0  # samples in the incomplete bucket
        self._pending: list[npt.NDArray[Any]] = []
        self._pending_samples = 0
        self.samples = 0

    def add(self, samples: npt.NDArray[Any]) -> None:
        """Append float samples (1.0 = full scale): shape (n,) or planar (channels, n).

        The array is kept (not copied) until the next batch is processed: don't modify it.
        """
        if samples.ndim == 1:
            samples = samples.reshape(1, -1)
        n = int(samples.shape[1])
        if n == 0:
            return
        self.samples += n
        self._pending.append(samples)
        self._pending_samples += n
        if self._pending_samples >= self._batch:
            self._drain()

    def _drain(self) -> None:
        if not self._pending:
            return
        pending, self._pending, self._pending_samples = self._pending, [], 0
        block = pending[0] if len(pending) == 1 else np.concatenate(pending, axis=1)
        mags = np.abs(block)
        self._add_magnitudes(mags[0] if mags.shape[0] == 1 else mags.max(axis=0))

    def _add_magnitudes(self, mags: npt.NDArray[Any]) -> None:
        n = int(mags.shape[0])
        pos = 0
        while pos < n:
            if self._fill or n - pos < self._block:
                take = min(n - pos, self._block - self._fill)
                self._cur = max(self._cur, float(mags[pos : pos + take].max()))
                self._fill += take
                pos += take
                if self._fill == self._block:
                    self._peaks[self._count] = self._cur
                    self._count += 1
                    self._cur = 0.0
                    self._fill = 0
                    if self._count == _CAPACITY:
                        self._compact()
                continue
            full = min((n - pos) // self._block, _CAPACITY - self._count)
            end = pos + full * self._block
            self._peaks[self._count : self._count + full] = (
                mags[pos:end].reshape(full, self._block).max(axis=1)
            )
            self._count += full
            pos = end
            if self._count == _CAPACITY:
                self._compact()

    def _compact(self) -> None:
        # Called only when a bucket boundary falls at _CAPACITY * block, a multiple of 2 * block,
        # so the merged buckets stay aligned with the samples still to come.
        half = _CAPACITY // 2
        self._peaks[:half] = self._peaks.reshape(half, 2).max(axis=1)
        self._peaks[half:] = 0.0
        self._count = half
        self._block *= 2

    def peaks(self, bars: int = WAVEFORM_BARS) -> list[float]:
        """Peak magnitude of each of `bars` equal slices of the signal so far (zeros if empty)."""
        self._drain()
        if self.samples == 0:
            return [0.0] * bars
        fine = self._peaks[: self._count]
        if self._fill:
            fine = np.append(fine, np.float32(self._cur))
        total = self.samples
        out: list[float] = []
        for j in range(bars):
            lo = (j * total) // bars // self._block
            hi = -(-((j + 1) * total) // bars // self._block)  # ceil
            lo = min(lo, len(fine) - 1)
            out.append(float(fine[lo : max(hi, lo + 1)].max()))
        return out

    def bars(self, bars: int = WAVEFORM_BARS) -> list[int]:
        """The waveform: `bars` ints in 0..255 (see the module docstring for the scale)."""
        return [level(p) for p in self.peaks(bars)]


def level(peak: float) -> int:
    """Map a peak magnitude (1.0 = full scale) to 0..255 on the 60 dB scale."""
    if peak <= 0.0 or not math.isfinite(peak):
        return 0
    db = 20.0 * math.log10(peak)
    x = (db - FLOOR_DBFS) / -FLOOR_DBFS
    return round(255 * min(1.0, max(0.0, x)))
