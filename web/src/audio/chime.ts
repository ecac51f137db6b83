// The voice inbox's chime before each message: two short sine notes made by WebAudio (no sound
// file, nothing from the network).

/** How long the chime lasts, and the pause before the message starts (ms). */
export const CHIME_MS = 150;
export const CHIME_GAP_MS = 350;

let context: AudioContext | null = null;

/**
 * Make (or wake) the AudioContext. Call it from a click or key press: browsers let a page start
 * sound only after a gesture, and the chimes that follow are played by this same context.
 */
export function unlockChime(): void {
  try {
    context ??= new AudioContext();
    if (context.state === "suspended") void context.resume().catch(() => {});
  } catch {
    context = null; // no WebAudio: the inbox plays without chimes
  }
}

/** Play the chime (a rising pair of notes, ~150 ms). Silently nothing without WebAudio. */
export function chime(): void {
  unlockChime();
  const ctx = context;
  if (!ctx) return;
  try {
    const t = ctx.currentTime + 0.01;
    const end = t + CHIME_MS / 1000;
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = "sine";
    osc.frequency.setValueAtTime(880, t);
    osc.frequency.setValueAtTime(1318.5, t + CHIME_MS / 2000);
    gain.gain.setValueAtTime(0.0001, t);
    gain.gain.exponentialRampToValueAtTime(0.25, t + 0.012);
    gain.gain.exponentialRampToValueAtTime(0.0001, end);
    osc.connect(gain).connect(ctx.destination);
    osc.start(t);
    osc.stop(end + 0.02);
    osc.onended = () => {
      osc.disconnect();
      gain.disconnect();
    };
  } catch {
    // a closed or broken context: no chime this time
  }
}
