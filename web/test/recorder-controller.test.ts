// The controller wires gestures → machine → effects on a recording. A fake recording stands in
// for VoiceRecording, so each step can be driven by hand.
import { describe, expect, test, vi } from "vitest";
import { ApiError } from "../src/api/http";
import { createRecorderController, type RecordingHandle } from "../src/recorder/controller";
import { Emitter } from "../src/recorder/emitter";
import { TEXT } from "../src/recorder/machine";
import { MicError, type VoiceRecordingEvents } from "../src/recorder/recording";

function control<T>() {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

class FakeRecording implements RecordingHandle {
  readonly events = new Emitter<VoiceRecordingEvents>();
  readonly started = control<void>();
  elapsedMs = 0;
  calls: string[] = [];
  stopResult: () => Promise<string> = () => Promise.resolve("up1");

  on<K extends keyof VoiceRecordingEvents>(type: K, fn: (p: VoiceRecordingEvents[K]) => void) {
    return this.events.on(type, fn);
  }
  start() {
    this.calls.push("start");
    return this.started.promise;
  }
  pause() {
    this.calls.push("pause");
  }
  resume() {
    this.calls.push("resume");
  }
  stop() {
    this.calls.push("stop");
    return this.stopResult();
  }
  discard() {
    this.calls.push("discard");
    return Promise.resolve();
  }
  dispose() {
    this.calls.push("dispose");
  }
  previewUrl() {
    return "blob:preview";
  }
}

const flush = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

function setup(sendMessage: (id: string) => Promise<unknown> = async () => undefined) {
  const recordings: FakeRecording[] = [];
  const uploads: Array<string | null> = [];
  const played: string[] = [];
  const send = vi.fn(sendMessage);
  const c = createRecorderController({
    chatId: "c1",
    sendMessage: send,
    playPreview: (url) => played.push(url),
    onUpload: (id) => uploads.push(id),
    createRecording: (chatId) => {
      expect(chatId).toBe("c1");
      const r = new FakeRecording();
      recordings.push(r);
      return r;
    },
  });
  const rec = () => recordings.at(-1)!;
  /** The mic is granted and the recording runs for `ms`. */
  const record = async (ms: number) => {
    rec().started.resolve();
    await flush();
    rec().elapsedMs = ms;
    rec().events.emit("elapsed", ms);
  };
  return { c, recordings, rec, record, send, uploads, played, kind: () => c.getState().machine.kind };
}

describe("hold to record", () => {
  test("hold, release after a while: sends the upload as a voice message", async () => {
    const t = setup();
    t.c.press(100, 100, 0);
    expect(t.kind()).toBe("acquiring");
    expect(t.rec().calls).toEqual(["start"]);
    await t.record(2000);
    expect(t.c.getState().machine).toEqual({ kind: "holding", elapsedMs: 2000 });
    t.c.release(2100);
    expect(t.kind()).toBe("sending");
    await flush();
    expect(t.send).toHaveBeenCalledWith("up1");
    expect(t.kind()).toBe("idle");
    expect(t.rec().calls).toEqual(["start", "stop", "dispose"]);
  });

  test("release uses the recording's latest time, not a stale tick", async () => {
    const t = setup();
    t.c.press(0, 0, 0);
    await t.record(300);
    t.rec().elapsedMs = 800; // recorded on since the last tick
    t.c.release(900);
    expect(t.kind()).toBe("sending");
  });

  test("too short: discarded, with the hint, until the next start", async () => {
    const t = setup();
    t.c.press(0, 0, 0);
    await t.record(400);
    t.c.release(500);
    expect(t.c.getState()).toMatchObject({ machine: { kind: "idle" }, hint: TEXT.tooShort, error: null });
    expect(t.rec().calls).toEqual(["start", "discard"]);
    expect(t.send).not.toHaveBeenCalled();
    t.c.press(0, 0, 1000);
    expect(t.c.getState().hint).toBeNull();
  });

  test("released while the mic is still being asked for: discarded, never recording", async () => {
    const t = setup();
    t.c.press(0, 0, 0);
    t.c.release(600);
    expect(t.kind()).toBe("idle");
    expect(t.c.getState().hint).toBe(TEXT.tooShort);
    expect(t.rec().calls).toEqual(["start", "discard"]);
    t.rec().started.resolve(); // the mic arrives late
    await flush();
    expect(t.kind()).toBe("idle");
    expect(t.rec().calls).toEqual(["start", "discard", "discard"]);
  });

  test("slide left cancels: discarded, and the release after it does nothing", async () => {
    const t = setup();
    t.c.press(300, 300, 0);
    await t.record(1500);
    t.c.move(250, 300, 1000);
    expect(t.kind()).toBe("holding");
    t.c.move(150, 310, 1200);
    expect(t.kind()).toBe("cancelled");
    t.c.release(1500);
    expect(t.kind()).toBe("cancelled");
    expect(t.rec().calls).toEqual(["start", "discard"]);
    expect(t.uploads).toEqual([null]);
  });

  test("slide up locks; the release does not send", async () => {
    const t = setup();
    t.c.press(300, 300, 0);
    await t.record(1000);
    t.c.move(300, 200, 800);
    expect(t.kind()).toBe("locked");
    t.c.release(1200);
    expect(t.kind()).toBe("locked");
    expect(t.send).not.toHaveBeenCalled();
  });

  test("moves without a press mean nothing", () => {
    const t = setup();
    t.c.move(0, 0, 0);
    t.c.release(10);
    expect(t.kind()).toBe("idle");
    expect(t.recordings).toHaveLength(0);
  });
});

describe("locked recording", () => {
  test("a click starts a locked recording: pause, preview, resume, send", async () => {
    const t = setup();
    t.c.press(0, 0, 0);
    t.c.release(120);
    expect(t.c.getState().machine).toEqual({ kind: "acquiring", mode: "locked" });
    await t.record(1000);
    expect(t.kind()).toBe("locked");
    t.c.pause();
    expect(t.kind()).toBe("paused");
    expect(t.c.playPreview()).toBe("blob:preview");
    expect(t.played).toEqual(["blob:preview"]);
    t.c.resume();
    t.c.send();
    await flush();
    expect(t.rec().calls).toEqual(["start", "pause", "resume", "stop", "dispose"]);
    expect(t.send).toHaveBeenCalledWith("up1");
    expect(t.kind()).toBe("idle");
  });

  test("Enter/Space starts a locked recording", async () => {
    const t = setup();
    t.c.key();
    await t.record(100);
    expect(t.kind()).toBe("locked");
  });

  test("delete while paused discards", async () => {
    const t = setup();
    t.c.key();
    await t.record(3000);
    t.c.pause();
    t.c.delete();
    expect(t.kind()).toBe("idle");
    expect(t.rec().calls).toEqual(["start", "pause", "discard"]);
    expect(t.c.playPreview()).toBeNull();
  });
});

describe("failures", () => {
  test("mic refused: an alert naming the microphone; the click tail does not ask again", async () => {
    const t = setup();
    t.c.press(0, 0, 0);
    t.rec().started.reject(new MicError("denied"));
    await flush();
    expect(t.c.getState()).toMatchObject({ machine: { kind: "failed", reason: "denied" }, error: TEXT.micDenied });
    t.c.release(100);
    expect(t.recordings).toHaveLength(1);
    t.c.key();
    expect(t.recordings).toHaveLength(2);
    expect(t.c.getState().error).toBeNull();
  });

  test("getUserMedia's own errors are mapped", async () => {
    const t = setup();
    t.c.key();
    t.rec().started.reject(Object.assign(new Error(), { name: "NotFoundError" }));
    await flush();
    expect(t.c.getState().error).toBe(TEXT.micMissing);
  });

  test("mic lost mid-recording (or the tab closing): failed, what was recorded kept", async () => {
    const t = setup();
    t.c.key();
    await t.record(2000);
    t.rec().events.emit("error", new MicError("missing"));
    expect(t.c.getState()).toMatchObject({ machine: { kind: "failed" }, error: TEXT.micMissing });
    await flush();
    expect(t.rec().calls).toContain("stop");
    expect(t.rec().calls).not.toContain("discard");
  });

  test("send failure keeps the recording; sending again retries with the same upload", async () => {
    let fail = true;
    const t = setup(async () => {
      if (fail) throw new ApiError(0, "network", "No connection to the server.");
    });
    t.c.key();
    await t.record(2000);
    t.c.send();
    await flush();
    expect(t.c.getState()).toMatchObject({
      machine: { kind: "failed", reason: "send", elapsedMs: 2000 },
      error: "The voice message could not be sent: No connection to the server.",
    });
    expect(t.rec().calls).not.toContain("discard");
    fail = false;
    t.c.send();
    expect(t.kind()).toBe("sending");
    await flush();
    expect(t.kind()).toBe("idle");
    expect(t.send.mock.calls).toEqual([["up1"], ["up1"]]);
    expect(t.recordings).toHaveLength(1);
  });

  test("an upload that fails to finish is a send failure too; delete then discards", async () => {
    const t = setup();
    t.c.key();
    await t.record(2000);
    t.rec().stopResult = () => Promise.reject(new Error("boom"));
    t.c.send();
    await flush();
    expect(t.c.getState()).toMatchObject({ machine: { kind: "failed" }, error: TEXT.sendFailed });
    expect(t.send).not.toHaveBeenCalled();
    t.c.delete();
    expect(t.kind()).toBe("idle");
    expect(t.rec().calls.at(-1)).toBe("discard");
  });
});

describe("the store", () => {
  test("subscribers hear every change, including the level; unsubscribe works", async () => {
    const t = setup();
    const seen: string[] = [];
    const off = t.c.subscribe(() => seen.push(t.kind()));
    t.c.key();
    await t.record(100);
    t.rec().events.emit("level", 0.7);
    expect(t.c.getState().level).toBe(0.7);
    expect(seen).toEqual(["acquiring", "locked", "locked", "locked"]);
    off();
    t.c.delete();
    expect(seen).toHaveLength(4);
    expect(t.c.getState().level).toBe(0);
  });

  test("the snapshot is the same object while nothing changes", async () => {
    const t = setup();
    const before = t.c.getState();
    t.c.send(); // means nothing when idle
    expect(t.c.getState()).toBe(before);
  });

  test("onUpload: the draft's id while recording, null once sent", async () => {
    const t = setup();
    t.c.key();
    await t.record(1000);
    t.rec().events.emit("upload", "up1");
    t.c.send();
    await flush();
    expect(t.uploads).toEqual(["up1", null]);
  });

  test("a stale recording's events are ignored and its late mic is released", async () => {
    const t = setup();
    t.c.press(0, 0, 0);
    t.c.move(-200, 0, 50); // cancel while the mic is coming
    const stale = t.rec();
    t.c.key();
    const fresh = t.rec();
    expect(fresh).not.toBe(stale);
    stale.started.resolve();
    stale.events.emit("level", 0.9);
    await flush();
    expect(stale.calls).toEqual(["start", "discard", "discard"]);
    expect(t.c.getState().machine).toEqual({ kind: "acquiring", mode: "locked" });
    expect(t.c.getState().level).toBe(0);
  });

  test("dispose keeps a recording in progress as a server draft; an unfinished ask is dropped", async () => {
    const t = setup();
    t.c.key();
    await t.record(5000);
    t.c.dispose();
    await flush();
    expect(t.rec().calls).toEqual(["start", "stop", "dispose"]);
    t.c.key(); // ignored after dispose
    expect(t.recordings).toHaveLength(1);

    const u = setup();
    u.c.press(0, 0, 0);
    u.c.dispose();
    expect(u.rec().calls).toEqual(["start", "discard"]);
  });
});
