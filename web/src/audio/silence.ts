// Long silences in a voice message, from its 64-bar waveform: the voice inbox seeks past them.
// Pure: no DOM, unit-tested.

/** A span to skip, in ms from the start: playback that reaches `start_ms` goes on at `end_ms`. */
export interface Silence {
  start_ms: number;
  end_ms: number;
}

/** Only pauses this long are skipped: shorter ones are part of speaking. */
export const SILENCE_MIN_MS = 2000;
/** Of a skipped pause, this much is kept at each side, so words are not run together. */
export const SILENCE_KEEP_MS = 250;
/**
 * A bar is silent below this level (the waveform's scale: 0..255 over 60 dB, so 64 ≈ -45 dBFS,
 * above room noise and below speech), or below 40 % of the loudest bar for a quiet recording.
 */
export const SILENCE_LEVEL = 64;
const RELATIVE_LEVEL = 0.4;

/**
 * The silences to skip in a message of `durationMs` whose waveform is `bars` (spread evenly
 * over the duration): each run of quiet bars lasting at least `minMs`, less `keepMs` at each
 * side. A run at the very start is skipped from 0 and one at the very end up to the end.
 * A message that is quiet throughout has none (nothing to tell speech from silence by).
 */
export function silentRanges(
  bars: readonly number[],
  durationMs: number,
  minMs = SILENCE_MIN_MS,
  keepMs = SILENCE_KEEP_MS,
): Silence[] {
  const n = bars.length;
  if (!n || !(durationMs > 0)) return [];
  const loudest = Math.max(...bars);
  const level = Math.min(SILENCE_LEVEL, loudest * RELATIVE_LEVEL);
  if (level <= 0) return [];
  const barMs = durationMs / n;
  const out: Silence[] = [];
  let i = 0;
  while (i < n) {
    if (bars[i] >= level) {
      i += 1;
      continue;
    }
    let j = i;
    while (j < n && bars[j] < level) j += 1;
    const start = i * barMs;
    const end = j === n ? durationMs : j * barMs;
    if (end - start >= minMs && !(i === 0 && j === n)) {
      const s = i === 0 ? 0 : start + keepMs;
      const e = j === n ? durationMs : end - keepMs;
      if (e > s) out.push({ start_ms: Math.round(s), end_ms: Math.round(e) });
    }
    i = j;
  }
  return out;
}

/** Where to go on from `positionMs`: the end of the silence it is in, or null to go on as is. */
export function skipTarget(silences: readonly Silence[], positionMs: number): number | null {
  for (const s of silences) {
    if (positionMs >= s.start_ms && positionMs < s.end_ms) return s.end_ms;
  }
  return null;
}
