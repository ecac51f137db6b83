// The voice recorder as a pure reducer (DESIGN.md "The web app", UI.md "Recording").
//
//   idle ─press─▶ acquiring(hold) ─micReady─▶ holding ─release ≥ 0.5 s─▶ sending ─sent─▶ idle
//   idle ─click/key─▶ acquiring(locked) ─micReady─▶ locked ⇄ paused ─send─▶ sending
//   holding ─lock─▶ locked        holding ─cancel─▶ cancelled        locked/paused ─delete─▶ idle
//   acquiring ─micError─▶ failed(mic)        sending ─sendFailed─▶ failed(send) ─send─▶ sending
//   holding/locked ─micError─▶ failed(mic), what was recorded kept as an unsent draft
//
// transition(state, event) returns the next state and the effects to run, as data; it never
// touches a microphone or the network. An event that means nothing in a state returns the same
// state object and no effects, so a store can skip notifying.
//
// Elapsed time comes in through `tick` (the recording's own clock, which already leaves out paused
// time); the reducer keeps the largest value seen and ignores ticks while paused or sending, so the
// displayed time never runs on during a pause.

/** A recording shorter than this is discarded on release, with a hint. */
export const MIN_RECORDING_MS = 500;

export const TEXT = {
  tooShort: "Hold to record, release to send",
  micDenied:
    "Microphone access was refused. Allow the microphone in your browser's site settings to record.",
  micMissing: "No microphone was found.",
  micOther: "The microphone could not be started.",
  sendFailed: "The voice message could not be sent. Try again.",
} as const;

export type MicErrorReason = "denied" | "missing" | "other";

export type RecorderState =
  /** Nothing recorded; the record button shows. */
  | { readonly kind: "idle" }
  /** Asking for the microphone. `mode` is what the recording becomes once the mic is ready. */
  | { readonly kind: "acquiring"; readonly mode: "hold" | "locked" }
  /** Recording while the button is held; releasing sends. */
  | { readonly kind: "holding"; readonly elapsedMs: number }
  /** Recording hands-free, with pause, delete and send controls. */
  | { readonly kind: "locked"; readonly elapsedMs: number }
  /** A locked recording, paused; it can be previewed. */
  | { readonly kind: "paused"; readonly elapsedMs: number }
  /** Finishing the upload and posting the message. */
  | { readonly kind: "sending"; readonly elapsedMs: number }
  /** Slid to cancel; behaves like idle. */
  | { readonly kind: "cancelled" }
  /** The mic was refused or is missing (nothing kept), or sending failed (the recording is kept). */
  | {
      readonly kind: "failed";
      readonly reason: MicErrorReason | "send";
      readonly message: string;
      readonly elapsedMs: number;
    };

export type RecorderEvent =
  /** Pointer down on the record button. */
  | { readonly type: "press" }
  /** A press shorter than 300 ms: start a locked recording, or lock the one being held. */
  | { readonly type: "click" }
  /** Enter or Space on the record button: start a locked recording (also after a mic failure). */
  | { readonly type: "key" }
  /** Slid up while holding. */
  | { readonly type: "lock" }
  /** Slid left while holding. */
  | { readonly type: "cancel" }
  /** Pointer released after 300 ms or more: send what was held. */
  | { readonly type: "release" }
  | { readonly type: "micReady" }
  | { readonly type: "micError"; readonly reason: MicErrorReason }
  | { readonly type: "pause" }
  | { readonly type: "resume" }
  | { readonly type: "delete" }
  | { readonly type: "send" }
  | { readonly type: "sent" }
  | { readonly type: "sendFailed"; readonly text?: string }
  /** The recording's elapsed time, pauses excluded. */
  | { readonly type: "tick"; readonly elapsedMs: number };

export type RecorderEffect =
  /** Ask for the mic and start recording (and streaming the upload) once it is granted. */
  | { readonly type: "startCapture" }
  /** Stop recording, release the mic, terminate the upload; also when the mic arrives later. */
  | { readonly type: "discard" }
  /**
   * Stop recording and release the mic, but keep what was recorded on the server: it is then
   * offered as an "Unsent recording". For a mic lost mid-recording, or a tab being closed.
   */
  | { readonly type: "keep" }
  | { readonly type: "pauseCapture" }
  | { readonly type: "resumeCapture" }
  /** Stop recording, finish the upload, post the message; answer with `sent` or `sendFailed`. */
  | { readonly type: "finishAndSend" }
  | { readonly type: "hint"; readonly text: string }
  | { readonly type: "error"; readonly text: string };

export interface Transition {
  readonly state: RecorderState;
  readonly effects: readonly RecorderEffect[];
}

export const initialState: RecorderState = { kind: "idle" };

const MIC_TEXT: Record<MicErrorReason, string> = {
  denied: TEXT.micDenied,
  missing: TEXT.micMissing,
  other: TEXT.micOther,
};

/** The message shown (role=alert) for a microphone failure; it always names the microphone. */
export function micErrorText(reason: MicErrorReason): string {
  return MIC_TEXT[reason];
}

/** True while a microphone is (or is about to be) in use. */
export function isCapturing(state: RecorderState): boolean {
  return (
    state.kind === "acquiring" ||
    state.kind === "holding" ||
    state.kind === "locked" ||
    state.kind === "paused"
  );
}

/** The next state and the effects to run for an event. Pure. */
export function transition(state: RecorderState, event: RecorderEvent): Transition {
  switch (state.kind) {
    case "idle":
    case "cancelled":
      return fromRest(state, event);
    case "acquiring":
      return fromAcquiring(state, event);
    case "holding":
      return fromHolding(state, event);
    case "locked":
      return fromLocked(state, event);
    case "paused":
      return fromPaused(state, event);
    case "sending":
      return fromSending(state, event);
    case "failed":
      return state.reason === "send" ? fromSendFailed(state, event) : fromMicFailed(state, event);
  }
}

const to = (state: RecorderState, ...effects: RecorderEffect[]): Transition => ({ state, effects });
const stay = (state: RecorderState): Transition => ({ state, effects: [] });
const start = (mode: "hold" | "locked"): Transition =>
  to({ kind: "acquiring", mode }, { type: "startCapture" });

function fromRest(state: RecorderState, event: RecorderEvent): Transition {
  switch (event.type) {
    case "press":
      return start("hold");
    case "click":
    case "key":
      return start("locked");
    case "micReady":
      // A mic granted after its recording was given up: release it at once.
      return to(state, { type: "discard" });
    default:
      return stay(state);
  }
}

function fromMicFailed(state: RecorderState, event: RecorderEvent): Transition {
  switch (event.type) {
    case "press":
      return start("hold");
    case "key":
      return start("locked");
    // "click" is ignored: it is the tail of the press whose mic request just failed, and
    // asking again at once would only fail again.
    default:
      return stay(state);
  }
}

function fromAcquiring(
  state: Extract<RecorderState, { kind: "acquiring" }>,
  event: RecorderEvent,
): Transition {
  switch (event.type) {
    case "micReady":
      return stay(
        state.mode === "hold" ? { kind: "holding", elapsedMs: 0 } : { kind: "locked", elapsedMs: 0 },
      );
    case "micError":
      return micFailed(event.reason);
    case "click":
    case "lock":
      return state.mode === "locked" ? stay(state) : stay({ kind: "acquiring", mode: "locked" });
    case "cancel":
      return to({ kind: "cancelled" }, { type: "discard" });
    case "release":
      // Held past a click but the mic is not ready: nothing was recorded. The discard also
      // covers the mic that may still arrive.
      if (state.mode !== "hold") return stay(state);
      return to({ kind: "idle" }, { type: "discard" }, { type: "hint", text: TEXT.tooShort });
    case "delete":
      return state.mode === "locked" ? to({ kind: "idle" }, { type: "discard" }) : stay(state);
    default:
      return stay(state);
  }
}

function fromHolding(
  state: Extract<RecorderState, { kind: "holding" }>,
  event: RecorderEvent,
): Transition {
  switch (event.type) {
    case "tick":
      return stay({ kind: "holding", elapsedMs: later(state.elapsedMs, event.elapsedMs) });
    case "click":
    case "lock":
      return stay({ kind: "locked", elapsedMs: state.elapsedMs });
    case "cancel":
      return to({ kind: "cancelled" }, { type: "discard" });
    case "release":
      if (state.elapsedMs < MIN_RECORDING_MS) {
        return to({ kind: "idle" }, { type: "discard" }, { type: "hint", text: TEXT.tooShort });
      }
      return to({ kind: "sending", elapsedMs: state.elapsedMs }, { type: "finishAndSend" });
    case "micError":
      // The mic went away mid-recording (unplugged, permission revoked, the tab closing).
      return to(micFailed(event.reason).state, { type: "keep" }, errorOf(event.reason));
    default:
      return stay(state);
  }
}

function fromLocked(
  state: Extract<RecorderState, { kind: "locked" }>,
  event: RecorderEvent,
): Transition {
  switch (event.type) {
    case "tick":
      return stay({ kind: "locked", elapsedMs: later(state.elapsedMs, event.elapsedMs) });
    case "pause":
      return to({ kind: "paused", elapsedMs: state.elapsedMs }, { type: "pauseCapture" });
    default:
      return fromRecordingBar(state, event);
  }
}

function fromPaused(
  state: Extract<RecorderState, { kind: "paused" }>,
  event: RecorderEvent,
): Transition {
  if (event.type === "resume") {
    return to({ kind: "locked", elapsedMs: state.elapsedMs }, { type: "resumeCapture" });
  }
  return fromRecordingBar(state, event);
}

/** What the locked bar does whether recording or paused: send, delete, losing the mic. */
function fromRecordingBar(
  state: Extract<RecorderState, { kind: "locked" | "paused" }>,
  event: RecorderEvent,
): Transition {
  switch (event.type) {
    case "send":
      return to({ kind: "sending", elapsedMs: state.elapsedMs }, { type: "finishAndSend" });
    case "delete":
      return to({ kind: "idle" }, { type: "discard" });
    case "micError":
      return to(micFailed(event.reason).state, { type: "keep" }, errorOf(event.reason));
    default:
      return stay(state);
  }
}

function fromSending(
  state: Extract<RecorderState, { kind: "sending" }>,
  event: RecorderEvent,
): Transition {
  switch (event.type) {
    case "sent":
      return stay({ kind: "idle" });
    case "sendFailed": {
      const message = event.text || TEXT.sendFailed;
      return to(
        { kind: "failed", reason: "send", message, elapsedMs: state.elapsedMs },
        { type: "error", text: message },
      );
    }
    default:
      return stay(state);
  }
}

function fromSendFailed(
  state: Extract<RecorderState, { kind: "failed" }>,
  event: RecorderEvent,
): Transition {
  switch (event.type) {
    case "send":
      return to({ kind: "sending", elapsedMs: state.elapsedMs }, { type: "finishAndSend" });
    case "delete":
      return to({ kind: "idle" }, { type: "discard" });
    default:
      return stay(state);
  }
}

function micFailed(reason: MicErrorReason): Transition {
  const message = micErrorText(reason);
  return to({ kind: "failed", reason, message, elapsedMs: 0 }, { type: "error", text: message });
}

function errorOf(reason: MicErrorReason): RecorderEffect {
  return { type: "error", text: micErrorText(reason) };
}

function later(current: number, tick: number): number {
  return Number.isFinite(tick) && tick > current ? tick : current;
}
