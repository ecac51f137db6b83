// The record button's pointer gestures (UI.md "Recording"), as pure functions of pointer samples.
// No DOM: the view feeds in {x, y, t} from its pointer events and gets back what the gesture means.
//
// A hold starts at pointerdown. While held, the first threshold crossed decides the gesture:
// left by more than CANCEL_DX px cancels, up by more than LOCK_DY px locks. Once decided it stays
// decided (sliding back changes nothing, and the release that follows means nothing). If a single
// move crosses both thresholds, the one crossed earlier along the straight line from the previous
// sample wins; an exact tie goes to "lock" (it keeps what was said; a cancel would throw it away).
// On release, a press shorter than CLICK_MS is a "click" (start a locked recording, the desktop
// way); a longer one is a "release" (send).

/** Slide left by more than this many px (dx < -CANCEL_DX) to cancel. */
export const CANCEL_DX = 100;
/** Slide up by more than this many px (dy < -LOCK_DY) to lock. */
export const LOCK_DY = 80;
/** A press released in less than this many ms is a click. */
export const CLICK_MS = 300;

/** One pointer sample: page coordinates in px (y grows downwards), time in ms. */
export interface PointerSample {
  x: number;
  y: number;
  t: number;
}

export type MoveOutcome = "none" | "cancel" | "lock";
export type ReleaseOutcome = "click" | "release" | "none";

/** A pointer hold in progress: where it started, the last sample seen, and what it has become. */
export interface Hold {
  readonly start: PointerSample;
  readonly last: PointerSample;
  readonly outcome: MoveOutcome;
}

/** Starts a hold at pointerdown. */
export function beginHold(at: PointerSample): Hold {
  return { start: at, last: at, outcome: "none" };
}

/**
 * What a single position means relative to the hold's start, ignoring history:
 * "cancel" past the left threshold, "lock" past the upper one, else "none".
 * When both are past, the one crossed further (relative to its threshold) wins.
 */
export function classifyPosition(start: PointerSample, at: PointerSample): MoveOutcome {
  const dx = at.x - start.x;
  const dy = at.y - start.y;
  const cancel = dx < -CANCEL_DX;
  const lock = dy < -LOCK_DY;
  if (cancel && lock) return -dx / CANCEL_DX > -dy / LOCK_DY ? "cancel" : "lock";
  return cancel ? "cancel" : lock ? "lock" : "none";
}

/**
 * Advances a hold by one pointermove. Returns the hold unchanged once its outcome is decided.
 * The returned outcome is "cancel" or "lock" on the move that crosses a threshold (and after).
 */
export function moveHold(hold: Hold, at: PointerSample): Hold {
  if (hold.outcome !== "none") return hold;
  return { start: hold.start, last: at, outcome: firstCrossing(hold.start, hold.last, at) };
}

/**
 * What releasing the pointer at time t means: "click" for a press shorter than CLICK_MS,
 * "release" (send) otherwise, and "none" if the hold was already decided by a slide.
 */
export function releaseHold(hold: Hold, t: number): ReleaseOutcome {
  if (hold.outcome !== "none") return "none";
  return classifyRelease(hold.start, t);
}

/** "click" when the press lasted less than CLICK_MS, else "release". */
export function classifyRelease(start: PointerSample, t: number): "click" | "release" {
  return t - start.t < CLICK_MS ? "click" : "release";
}

/**
 * Which threshold the straight move prev → next crosses first (prev is taken as not past either).
 * Both crossings are placed on the segment as a fraction s in (0, 1]; the smaller s wins.
 */
function firstCrossing(start: PointerSample, prev: PointerSample, next: PointerSample): MoveOutcome {
  const outcome = classifyPosition(start, next);
  const dx = next.x - start.x;
  const dy = next.y - start.y;
  if (!(dx < -CANCEL_DX && dy < -LOCK_DY)) return outcome;
  const sCancel = fractionTo(prev.x - start.x, dx, -CANCEL_DX);
  const sLock = fractionTo(prev.y - start.y, dy, -LOCK_DY);
  return sCancel < sLock ? "cancel" : "lock";
}

/** Where along from → to (0..1) the value passes the limit; 0 if it was already past. */
function fractionTo(from: number, to: number, limit: number): number {
  if (from < limit) return 0;
  return (from - limit) / (from - to);
}
