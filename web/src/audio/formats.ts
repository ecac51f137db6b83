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
