import { describe, expect, test } from "vitest";
import {
  MIN_RECORDING_MS,
  TEXT,
  initialState,
  isCapturing,
  micErrorText,
  transition,
  type RecorderEvent,
  type RecorderState,
} from "../src/recorder/machine";

/** Runs events from a state; returns the final state and every effect, in order. */
function run(state: RecorderState, ...events: RecorderEvent[]) {
  const effects = [];
  for (const event of events) {
    const next = transition(state, event);
    state = next.state;
    effects.push(...next.effects);
  }
  return { state, effects };
}

const ev = {
  press: { type: "press" },
  click: { type: "click" },
  key: { type: "key" },
  lock: { type: "lock" },
  cancel: { type: "cancel" },
  release: { type: "release" },
  micReady: { type: "micReady" },
  pause: { type: "pause" },
  resume: { type: "resume" },
  delete: { type: "delete" },
  send: { type: "send" },
  sent: { type: "sent" },
} as const satisfies Record<string, RecorderEvent>;
const tick = (elapsedMs: number): RecorderEvent => ({ type: "tick", elapsedMs });
const micError = (reason: "denied" | "missing" | "other"): RecorderEvent => ({ type: "micError", reason });

const idle: RecorderState = { kind: "idle" };
const holding = (elapsedMs = 0): RecorderState => ({ kind: "holding", elapsedMs });
const locked = (elapsedMs = 0): RecorderState => ({ kind: "locked", elapsedMs });
const paused = (elapsedMs = 0): RecorderState => ({ kind: "paused", elapsedMs });
const sending = (elapsedMs = 0): RecorderState => ({ kind: "sending", elapsedMs });
const sendFailed: RecorderState = {
  kind: "failed",
  reason: "send",
  message: TEXT.sendFailed,
  elapsedMs: 4000,
};

const ALL_EVENTS: RecorderEvent[] = [
  ...Object.values(ev),
  tick(1234),
  micError("denied"),
  { type: "sendFailed" },
];

describe("starting", () => {
  test("starts idle", () => {
    expect(initialState).toEqual(idle);
  });

  test("press asks for the mic, to hold", () => {
    expect(transition(idle, ev.press)).toEqual({
      state: { kind: "acquiring", mode: "hold" },
      effects: [{ type: "startCapture" }],
    });
  });

  test("click and Enter/Space start a locked recording", () => {
    for (const e of [ev.click, ev.key]) {
      expect(transition(idle, e)).toEqual({
        state: { kind: "acquiring", mode: "locked" },
        effects: [{ type: "startCapture" }],
      });
    }
  });

  test("from cancelled, the same as from idle", () => {
    const cancelled: RecorderState = { kind: "cancelled" };
    expect(transition(cancelled, ev.press).state).toEqual({ kind: "acquiring", mode: "hold" });
    expect(transition(cancelled, ev.key).state).toEqual({ kind: "acquiring", mode: "locked" });
  });

  test("mic ready: holding or locked, per the mode", () => {
    expect(run(idle, ev.press, ev.micReady)).toEqual({
      state: holding(0),
      effects: [{ type: "startCapture" }],
    });
    expect(run(idle, ev.key, ev.micReady).state).toEqual(locked(0));
  });

  test("a short press (click) while the mic is coming: locked once it comes", () => {
    const r = run(idle, ev.press, ev.click, ev.micReady);
    expect(r.state).toEqual(locked(0));
    expect(r.effects).toEqual([{ type: "startCapture" }]);
  });

  test("a short press after the mic came: locks the hold", () => {
    expect(run(idle, ev.press, ev.micReady, tick(200), ev.click).state).toEqual(locked(200));
  });

  test("slide up while the mic is coming: locked once it comes", () => {
    expect(run(idle, ev.press, ev.lock, ev.micReady).state).toEqual(locked(0));
  });
});

describe("the microphone", () => {
  test("refused: failed, with a message naming the microphone", () => {
    const r = run(idle, ev.press, micError("denied"));
    expect(r.state).toEqual({ kind: "failed", reason: "denied", message: TEXT.micDenied, elapsedMs: 0 });
    expect(r.effects).toEqual([{ type: "startCapture" }, { type: "error", text: TEXT.micDenied }]);
    expect(TEXT.micDenied).toBe(
      "Microphone access was refused. Allow the microphone in your browser's site settings to record.",
    );
  });

  test("missing and other failures name the microphone too", () => {
    expect(run(idle, ev.key, micError("missing")).state).toMatchObject({
      kind: "failed",
      reason: "missing",
      message: "No microphone was found.",
    });
    for (const reason of ["denied", "missing", "other"] as const) {
      expect(micErrorText(reason)).toMatch(/microphone/i);
    }
  });

  test("after a mic failure, the tail click of that press does not ask again", () => {
    const failed = run(idle, ev.press, micError("denied")).state;
    expect(transition(failed, ev.click)).toEqual({ state: failed, effects: [] });
  });

  test("after a mic failure, a new press or key tries again", () => {
    const failed = run(idle, ev.press, micError("denied")).state;
    expect(transition(failed, ev.press)).toEqual({
      state: { kind: "acquiring", mode: "hold" },
      effects: [{ type: "startCapture" }],
    });
    expect(transition(failed, ev.key).state).toEqual({ kind: "acquiring", mode: "locked" });
  });

  test("a mic that arrives after its recording was given up is released", () => {
    expect(transition(idle, ev.micReady)).toEqual({ state: idle, effects: [{ type: "discard" }] });
    const cancelled: RecorderState = { kind: "cancelled" };
    expect(transition(cancelled, ev.micReady).effects).toEqual([{ type: "discard" }]);
  });

  test("the mic going away mid-recording: failed, what was recorded kept as a draft", () => {
    for (const from of [holding(3000), locked(3000), { kind: "paused", elapsedMs: 3000 } as const]) {
      const r = transition(from, micError("missing"));
      expect(r.state).toMatchObject({ kind: "failed", reason: "missing" });
      expect(r.effects).toEqual([
        { type: "keep" },
        { type: "error", text: TEXT.micMissing },
      ]);
    }
  });
});

describe("holding", () => {
  test("ticks keep the elapsed time, never going back", () => {
    expect(run(holding(), tick(100), tick(900), tick(800)).state).toEqual(holding(900));
    expect(run(holding(), tick(Number.NaN)).state).toEqual(holding(0));
  });

  test("release after 0.5 s sends", () => {
    expect(run(holding(), tick(MIN_RECORDING_MS), ev.release)).toEqual({
      state: sending(MIN_RECORDING_MS),
      effects: [{ type: "finishAndSend" }],
    });
  });

  test("release under 0.5 s discards the draft, with a hint", () => {
    expect(run(holding(), tick(MIN_RECORDING_MS - 1), ev.release)).toEqual({
      state: idle,
      effects: [{ type: "discard" }, { type: "hint", text: TEXT.tooShort }],
    });
    expect(TEXT.tooShort).toBe("Hold to record, release to send");
  });

  test("a release while the mic is still coming leaves no mic running", () => {
    // Held past a click, but the browser is still asking: discard (also covers the late mic).
    const r = run(idle, ev.press, ev.release, ev.micReady);
    expect(r.state).toEqual(idle);
    expect(r.effects).toEqual([
      { type: "startCapture" },
      { type: "discard" },
      { type: "hint", text: TEXT.tooShort },
      { type: "discard" },
    ]);
  });

  test("slide left cancels: nothing sent, draft discarded", () => {
    expect(run(holding(), tick(4000), ev.cancel)).toEqual({
      state: { kind: "cancelled" },
      effects: [{ type: "discard" }],
    });
  });

  test("cancel while the mic is still coming", () => {
    expect(run(idle, ev.press, ev.cancel)).toEqual({
      state: { kind: "cancelled" },
      effects: [{ type: "startCapture" }, { type: "discard" }],
    });
  });

  test("slide up locks and keeps the time", () => {
    expect(run(holding(), tick(2500), ev.lock)).toEqual({ state: locked(2500), effects: [] });
  });

  test("a release after locking means nothing", () => {
    expect(transition(locked(2500), ev.release)).toEqual({ state: locked(2500), effects: [] });
  });
});

describe("locked and paused", () => {
  test("pause, resume, send", () => {
    const r = run(locked(), tick(1000), ev.pause, tick(5000), ev.resume, tick(1500), ev.send);
    expect(r.state).toEqual(sending(1500));
    expect(r.effects).toEqual([
      { type: "pauseCapture" },
      { type: "resumeCapture" },
      { type: "finishAndSend" },
    ]);
  });

  test("ticks while paused do not move the time", () => {
    expect(run(paused(1000), tick(3000)).state).toEqual(paused(1000));
  });

  test("send while paused", () => {
    expect(transition(paused(1200), ev.send)).toEqual({
      state: sending(1200),
      effects: [{ type: "finishAndSend" }],
    });
  });

  test("delete while paused or recording discards", () => {
    for (const from of [paused(1200), locked(1200)]) {
      expect(transition(from, ev.delete)).toEqual({ state: idle, effects: [{ type: "discard" }] });
    }
  });

  test("delete while a locked recording waits for the mic", () => {
    expect(run(idle, ev.key, ev.delete)).toEqual({
      state: idle,
      effects: [{ type: "startCapture" }, { type: "discard" }],
    });
  });

  test("a locked recording is sent even if short (the user chose to)", () => {
    expect(transition(locked(100), ev.send).state).toEqual(sending(100));
  });
});

describe("sending", () => {
  test("sent: back to idle", () => {
    expect(transition(sending(2000), ev.sent)).toEqual({ state: idle, effects: [] });
  });

  test("a failure keeps the recording to retry", () => {
    const r = transition(sending(4000), { type: "sendFailed" });
    expect(r.state).toEqual(sendFailed);
    expect(r.effects).toEqual([{ type: "error", text: TEXT.sendFailed }]);
  });

  test("the failure's own words are kept", () => {
    const r = transition(sending(4000), { type: "sendFailed", text: "Too long." });
    expect(r.state).toMatchObject({ kind: "failed", reason: "send", message: "Too long." });
    expect(r.effects).toEqual([{ type: "error", text: "Too long." }]);
  });

  test("retry after a failure sends again; delete discards", () => {
    expect(transition(sendFailed, ev.send)).toEqual({
      state: sending(4000),
      effects: [{ type: "finishAndSend" }],
    });
    expect(transition(sendFailed, ev.delete)).toEqual({ state: idle, effects: [{ type: "discard" }] });
  });

  test("a failed send cannot be replaced by a new recording by accident", () => {
    for (const e of [ev.press, ev.click, ev.key]) {
      expect(transition(sendFailed, e).state).toBe(sendFailed);
    }
  });
});

describe("events that mean nothing", () => {
  // Every (state, event) pair not listed here as meaningful leaves the same state object.
  const meaningful: Record<string, string[]> = {
    idle: ["press", "click", "key", "micReady"],
    cancelled: ["press", "click", "key", "micReady"],
    "acquiring/hold": ["click", "lock", "cancel", "release", "micReady", "micError"],
    "acquiring/locked": ["cancel", "micReady", "micError", "delete"],
    holding: ["click", "lock", "cancel", "release", "tick", "micError"],
    locked: ["pause", "send", "delete", "tick", "micError"],
    paused: ["resume", "send", "delete", "micError"],
    sending: ["sent", "sendFailed"],
    "failed/send": ["send", "delete"],
    "failed/denied": ["press", "key"],
  };
  const states: Record<string, RecorderState> = {
    idle,
    cancelled: { kind: "cancelled" },
    "acquiring/hold": { kind: "acquiring", mode: "hold" },
    "acquiring/locked": { kind: "acquiring", mode: "locked" },
    holding: holding(700),
    locked: locked(700),
    paused: paused(700),
    sending: sending(700),
    "failed/send": sendFailed,
    "failed/denied": { kind: "failed", reason: "denied", message: TEXT.micDenied, elapsedMs: 0 },
  };

  for (const [name, state] of Object.entries(states)) {
    test(name, () => {
      for (const event of ALL_EVENTS) {
        const r = transition(state, event);
        if (meaningful[name].includes(event.type)) {
          expect(r.state !== state || r.effects.length > 0, `${name} + ${event.type}`).toBe(true);
        } else {
          expect(r, `${name} + ${event.type}`).toEqual({ state, effects: [] });
          expect(r.state).toBe(state);
        }
      }
    });
  }
});

test("isCapturing: while the mic is wanted", () => {
  expect(isCapturing({ kind: "acquiring", mode: "hold" })).toBe(true);
  expect(isCapturing(holding())).toBe(true);
  expect(isCapturing(locked())).toBe(true);
  expect(isCapturing(paused())).toBe(true);
  expect(isCapturing(sending())).toBe(false);
  expect(isCapturing(idle)).toBe(false);
  expect(isCapturing(sendFailed)).toBe(false);
});
