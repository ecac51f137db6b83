// Pure choices of the player, unit-tested.
import type { MediaFormat } from "../api/http";
import { SPEEDS } from "../labels";

/** Ogg/Opus where the browser plays it, else the MP3 rendition (old Safari). */
export function playableFormat(canPlayType: (type: string) => string): MediaFormat {
  return canPlayType('audio/ogg; codecs="opus"') ? "ogg" : "mp3";
}

/** The speed after `speed` in 1× → 1.5× → 2× → 1×. */
export function nextSpeed(speed: number): number {
  const i = SPEEDS.indexOf(speed as (typeof SPEEDS)[number]);
  return SPEEDS[(i + 1) % SPEEDS.length];
}

/** One bar per peak (0–255), 2 units wide with a gap of 1, centred on the middle line. */
export function wavePath(bars: number[]): string {
  return bars
    .map((v, i) => {
      const h = Math.max(3, (v / 255) * 32);
      return `M${i * 3} ${(32 - h) / 2}h2v${h}h-2z`;
    })
    .join("");
}
