// VoiceRecording against fake browser parts: getUserMedia, MediaRecorder, the level meter and
// the streaming upload.
import { afterEach, describe, expect, test, vi } from "vitest";
import type { RecordingUpload, RecordingUploadOptions } from "../src/api/tus";
import {
  AUDIO_BITS_PER_SECOND,
  CHUNK_MS,
  LEVEL_INTERVAL_MS,
  MicError,
  STOP_TIMEOUT_MS,
  VoiceRecording,
  levelFromSamples,
  micErrorReason,
  pickMimeType,
  type RecorderLike,
  type RecordingDeps,
} from "../src/recorder/recording";

class FakeTrack {
  stopped = false;
  private readonly listeners: Array<() => void> = [];
  stop() {
    this.stopped = true;
  }
  addEventListener(_type: "ended", fn: () => void) {
    this.listeners.push(fn);
  }
  /** The browser ended it (unplugged, permission revoked). */
  end() {
    for (const fn of this.listeners) fn();
  }
}

function fakeStream() {
  const track = new FakeTrack();
  const stream = { getTracks: () => [track], getAudioTracks: () => [track] } as unknown as MediaStream;
  return { stream, track };
}

const later = () => new Promise<void>((resolve) => setTimeout(resolve, 0));
const flush = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

class FakeRecorder implements RecorderLike {
  state: "inactive" | "recording" | "paused" = "inactive";
  ondataavailable: ((event: { data: Blob }) => void) | null = null;
  onstop: (() => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  timeslice: number | undefined;
  requested = 0;
  /** What the recorder holds until the next chunk. */
  buffered = "";

  constructor(
    readonly options: MediaRecorderOptions,
    readonly mimeType = options.mimeType ?? "audio/webm",
  ) {}

  start(timeslice?: number) {
    this.state = "recording";
    this.timeslice = timeslice;
  }
  pause() {
    this.state = "paused";
  }
  resume() {
    this.state = "recording";
  }
  requestData() {
    this.requested++;
    void Promise.resolve().then(() => this.emitChunk());
  }
  /** Test knob: the browser never fires the stop event. */
  silentStop = false;
  stop() {
    this.state = "inactive";
    void Promise.resolve().then(() => {
      this.emitChunk();
      if (!this.silentStop) this.onstop?.();
    });
  }
  /** A timeslice ends: hand over what was buffered. */
  emitChunk(text = this.buffered) {
    this.buffered = "";
    this.ondataavailable?.({ data: new Blob([text], { type: this.mimeType }) });
  }
}

class FakeUpload implements RecordingUpload {
  readonly pushed: string[] = [];
  readonly log: string[] = [];
  ended = false;
  aborted = false;
  finishes = 0;
  failNext = false;
  readonly id: Promise<string>;
  private resolveId!: (id: string) => void;
  private chunks: Blob[] = [];

  constructor(readonly options: RecordingUploadOptions) {
    this.id = new Promise((resolve) => (this.resolveId = resolve));
  }
  created(id = "u1") {
    this.resolveId(id);
  }
  push(chunk: Blob) {
    this.chunks.push(chunk);
    this.log.push("push");
    void chunk.text().then((t) => this.pushed.push(t));
  }
  end() {
    if (!this.ended) this.log.push("end");
    this.ended = true;
  }
  finish() {
    this.end();
    this.finishes++;
    if (this.failNext) {
      this.failNext = false;
      return Promise.reject(new Error("network"));
    }
    return Promise.resolve("u1");
  }
  abort() {
    this.aborted = true;
    return Promise.resolve();
  }
  bytes() {
    return new Blob(this.chunks, { type: this.options.contentType });
  }
}

function setup(overrides: Partial<RecordingDeps> = {}) {
  const { stream, track } = fakeStream();
  const recorders: FakeRecorder[] = [];
  const uploads: FakeUpload[] = [];
  let clock = 0;
  let level = 0.5;
  const meter = { closed: false, level: () => level, close: () => (meter.closed = true) };
  const deps: RecordingDeps = {
    getUserMedia: vi.fn(async () => stream),
    isTypeSupported: (type) => type === "audio/webm;codecs=opus",
    createRecorder: vi.fn((_stream: MediaStream, options: MediaRecorderOptions) => {
      const r = new FakeRecorder(options);
      recorders.push(r);
      return r;
    }),
    createLevelMeter: () => meter,
    startUpload: vi.fn((options: RecordingUploadOptions) => {
      const u = new FakeUpload(options);
      uploads.push(u);
      return u;
    }),
    now: () => clock,
    ...overrides,
  };
  const rec = new VoiceRecording("c1", deps);
  return {
    rec,
    deps,
    track,
    meter,
    recorder: () => recorders[0],
    upload: () => uploads[0],
    advance: (ms: number) => (clock += ms),
    setLevel: (v: number) => (level = v),
  };
}

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe("starting", () => {
  test("asks for one voice channel, records Opus at 32 kbit/s in 1 s chunks, streams it", async () => {
    const t = setup();
    await t.rec.start();
    expect(t.deps.getUserMedia).toHaveBeenCalledWith({
      audio: expect.objectContaining({ channelCount: 1, echoCancellation: true }),
    });
    expect(t.recorder().options).toEqual({
      mimeType: "audio/webm;codecs=opus",
      audioBitsPerSecond: AUDIO_BITS_PER_SECOND,
    });
    expect(AUDIO_BITS_PER_SECOND).toBe(32000);
    expect(t.recorder().timeslice).toBe(CHUNK_MS);
    expect(CHUNK_MS).toBe(1000);
    expect(t.upload().options).toEqual({ chatId: "c1", contentType: "audio/webm;codecs=opus" });
    expect(t.rec.state).toBe("recording");
    expect(t.rec.mimeType).toBe("audio/webm;codecs=opus");
    await t.rec.discard();
  });

  test("mime type: the first the browser supports, else the browser's choice", () => {
    expect(pickMimeType(() => true)).toBe("audio/webm;codecs=opus");
    expect(pickMimeType((t) => t === "audio/ogg;codecs=opus")).toBe("audio/ogg;codecs=opus");
    expect(pickMimeType((t) => t === "audio/mp4")).toBe("audio/mp4");
    expect(pickMimeType(() => false)).toBeUndefined();
    expect(
      pickMimeType(() => {
        throw new Error("old browser");
      }),
    ).toBeUndefined();
  });

  test("with no supported type, the recorder's own mime type goes in the metadata", async () => {
    const t = setup({
      isTypeSupported: () => false,
      createRecorder: (_s, options) => new FakeRecorder(options, "audio/mp4;codecs=mp4a"),
    });
    await t.rec.start();
    expect(t.upload().options.contentType).toBe("audio/mp4;codecs=mp4a");
    await t.rec.discard();
  });

  test("announces the draft's upload id once created", async () => {
    const t = setup();
    const ids: string[] = [];
    t.rec.on("upload", (id) => ids.push(id));
    await t.rec.start();
    t.upload().created("u77");
    await flush();
    expect(ids).toEqual(["u77"]);
    await t.rec.discard();
  });

  test("start twice is a programming error", async () => {
    const t = setup();
    await t.rec.start();
    await expect(t.rec.start()).rejects.toThrow();
    await t.rec.discard();
  });
});

describe("microphone errors", () => {
  const named = (name: string) => Object.assign(new Error(name), { name });

  test("map to denied, missing or other", () => {
    expect(micErrorReason(named("NotAllowedError"))).toBe("denied");
    expect(micErrorReason(named("SecurityError"))).toBe("denied");
    expect(micErrorReason(named("NotFoundError"))).toBe("missing");
    expect(micErrorReason(named("OverconstrainedError"))).toBe("missing");
    expect(micErrorReason(named("NotReadableError"))).toBe("other");
    expect(micErrorReason(new MicError("missing"))).toBe("missing");
    expect(micErrorReason(undefined)).toBe("other");
  });

  test("a refused mic rejects start with a MicError; nothing is created", async () => {
    const t = setup({ getUserMedia: async () => Promise.reject(named("NotAllowedError")) });
    const err = await t.rec.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MicError);
    expect(err).toMatchObject({ reason: "denied" });
    expect(t.upload()).toBeUndefined();
    expect(t.recorder()).toBeUndefined();
  });

  test("a recorder that cannot start releases the mic", async () => {
    const t = setup({
      createRecorder: () => {
        throw named("NotSupportedError");
      },
    });
    await expect(t.rec.start()).rejects.toMatchObject({ reason: "other" });
    expect(t.track.stopped).toBe(true);
    expect(t.upload()).toBeUndefined();
  });

  test("a recorder that refuses to start releases the mic and creates no draft", async () => {
    const t = setup({
      createRecorder: (_s, options) =>
        Object.assign(new FakeRecorder(options), {
          start() {
            throw named("NotSupportedError");
          },
        }),
    });
    await expect(t.rec.start()).rejects.toMatchObject({ reason: "other" });
    expect(t.track.stopped).toBe(true);
    expect(t.upload()).toBeUndefined();
  });

  test("a mic that goes away mid-recording is reported", async () => {
    const t = setup();
    const errors: Error[] = [];
    t.rec.on("error", (e) => errors.push(e));
    await t.rec.start();
    t.track.end();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ reason: "missing" });
    await t.rec.discard();
  });
});

describe("recording", () => {
  test("every chunk is pushed to the upload as it arrives; empty ones are skipped", async () => {
    const t = setup();
    await t.rec.start();
    t.recorder().emitChunk("one");
    t.recorder().emitChunk("");
    t.recorder().emitChunk("two");
    await flush();
    expect(t.upload().pushed).toEqual(["one", "two"]);
    expect(t.upload().ended).toBe(false);
    await t.rec.discard();
  });

  test("elapsed time leaves out pauses", async () => {
    const t = setup();
    await t.rec.start();
    t.advance(1500);
    expect(t.rec.elapsedMs).toBe(1500);
    t.rec.pause();
    t.advance(10_000);
    expect(t.rec.elapsedMs).toBe(1500);
    t.rec.resume();
    t.advance(500);
    expect(t.rec.elapsedMs).toBe(2000);
    t.rec.pause();
    t.advance(700);
    t.rec.resume();
    t.advance(100);
    expect(t.rec.elapsedMs).toBe(2100);
    await t.rec.discard();
  });

  test("pause flushes what was recorded (upload and preview) and pauses the recorder", async () => {
    const t = setup();
    await t.rec.start();
    t.recorder().buffered = "so far";
    t.rec.pause();
    expect(t.recorder().requested).toBe(1);
    expect(t.recorder().state).toBe("paused");
    expect(t.rec.state).toBe("paused");
    await flush();
    expect(t.upload().pushed).toEqual(["so far"]);
    t.rec.resume();
    expect(t.recorder().state).toBe("recording");
    await t.rec.discard();
  });

  test("emits level (0..1) and elapsed about 30 times a second, and level 0 on pause", async () => {
    vi.useFakeTimers();
    const t = setup();
    const levels: number[] = [];
    const elapsed: number[] = [];
    t.rec.on("level", (l) => levels.push(l));
    t.rec.on("elapsed", (e) => elapsed.push(e));
    await t.rec.start();
    t.advance(100);
    vi.advanceTimersByTime(1000);
    expect(LEVEL_INTERVAL_MS).toBeLessThanOrEqual(34);
    expect(levels.length).toBeGreaterThanOrEqual(29);
    expect(levels.length).toBeLessThanOrEqual(31);
    expect(levels.every((l) => l === 0.5)).toBe(true);
    expect(elapsed.at(-1)).toBe(100);
    t.setLevel(7);
    vi.advanceTimersByTime(LEVEL_INTERVAL_MS);
    expect(levels.at(-1)).toBe(1);
    t.rec.pause();
    expect(levels.at(-1)).toBe(0);
    const count = levels.length;
    vi.advanceTimersByTime(1000);
    expect(levels.length).toBe(count); // nothing while paused
    await t.rec.discard();
    expect(t.meter.closed).toBe(true);
  });

  test("levelFromSamples: silence 0, full scale 1, speech in between", () => {
    expect(levelFromSamples(new Float32Array(64))).toBe(0);
    expect(levelFromSamples(new Float32Array(64).fill(1))).toBe(1);
    const speech = levelFromSamples(new Float32Array(64).fill(0.1)); // -20 dB
    expect(speech).toBeCloseTo(2 / 3, 5);
  });

  test("previewUrl: an object URL of what was recorded so far", async () => {
    const created: Blob[] = [];
    const revoked: string[] = [];
    vi.spyOn(URL, "createObjectURL").mockImplementation((b) => {
      created.push(b as Blob);
      return `blob:${created.length}`;
    });
    vi.spyOn(URL, "revokeObjectURL").mockImplementation((u) => void revoked.push(u));
    const t = setup();
    await t.rec.start();
    expect(t.rec.previewUrl()).toBeNull();
    t.recorder().emitChunk("ab");
    t.recorder().emitChunk("cd");
    t.rec.pause();
    expect(t.rec.previewUrl()).toBe("blob:1");
    expect(await created[0].text()).toBe("abcd");
    expect(created[0].type).toBe("audio/webm;codecs=opus");
    await t.rec.discard();
    expect(revoked).toEqual(["blob:1"]);
  });
});

describe("stop", () => {
  test("the final chunk and the end go together; resolves the upload id; mic released", async () => {
    const t = setup();
    await t.rec.start();
    t.recorder().emitChunk("one");
    t.recorder().buffered = "last";
    t.advance(3000);
    const id = await t.rec.stop();
    expect(id).toBe("u1");
    await flush();
    expect(t.upload().pushed).toEqual(["one", "last"]);
    expect(t.upload().log).toEqual(["push", "push", "end"]);
    expect(t.track.stopped).toBe(true);
    expect(t.meter.closed).toBe(true);
    expect(t.rec.state).toBe("stopped");
    t.advance(5000);
    expect(t.rec.elapsedMs).toBe(3000);
  });

  test("a chunk asked for on pause that arrives after stop() is not taken for the last", async () => {
    const t = setup();
    await t.rec.start();
    const r = t.recorder();
    r.requestData = () => void r.requested++; // its chunk comes late, by hand below
    t.rec.pause();
    r.buffered = "tail";
    const stopping = t.rec.stop(); // the user sends at once
    expect(r.state).toBe("inactive");
    r.ondataavailable?.({ data: new Blob(["before pause"]) }); // requestData's chunk, after stop()
    expect(t.upload().ended).toBe(false);
    await stopping; // then the final chunk ("tail") and the stop event
    await flush();
    expect(t.upload().pushed).toEqual(["before pause", "tail"]);
    expect(t.upload().log).toEqual(["push", "push", "end"]);
  });

  test("if the stop event never comes, stop() still ends the upload", async () => {
    vi.useFakeTimers();
    const t = setup();
    await t.rec.start();
    t.recorder().silentStop = true;
    t.recorder().buffered = "tail";
    const stopping = t.rec.stop();
    await vi.advanceTimersByTimeAsync(STOP_TIMEOUT_MS);
    expect(await stopping).toBe("u1");
    expect(t.upload().log).toEqual(["push", "end"]);
    expect(t.track.stopped).toBe(true);
  });

  test("a recorder that stops by itself ends the upload", async () => {
    const t = setup();
    await t.rec.start();
    t.recorder().buffered = "all";
    t.recorder().stop();
    await flush();
    expect(t.upload().log).toEqual(["push", "end"]);
    expect(await t.rec.stop()).toBe("u1");
  });

  test("stop from paused", async () => {
    const t = setup();
    await t.rec.start();
    t.rec.pause();
    expect(await t.rec.stop()).toBe("u1");
    expect(t.track.stopped).toBe(true);
  });

  test("stop again after a failed upload retries the upload, not the recorder", async () => {
    const t = setup();
    await t.rec.start();
    t.upload().failNext = true;
    await expect(t.rec.stop()).rejects.toThrow("network");
    expect(await t.rec.stop()).toBe("u1");
    expect(t.upload().finishes).toBe(2);
    expect(t.upload().log.filter((e) => e === "end")).toHaveLength(1);
  });
});

describe("discard", () => {
  test("stops the recorder, releases the mic, terminates the upload", async () => {
    const t = setup();
    await t.rec.start();
    t.recorder().emitChunk("x");
    await t.rec.discard();
    expect(t.recorder().state).toBe("inactive");
    expect(t.track.stopped).toBe(true);
    expect(t.upload().aborted).toBe(true);
    expect(t.rec.state).toBe("discarded");
    await later();
    expect(t.upload().ended).toBe(false); // the recorder's late events are not delivered
    await expect(t.rec.stop()).rejects.toThrow();
  });

  test("while the browser is still asking for the mic: the late mic is released at once", async () => {
    let grant!: (s: MediaStream) => void;
    const { stream, track } = fakeStream();
    const t = setup({ getUserMedia: () => new Promise((resolve) => (grant = resolve)) });
    const started = t.rec.start();
    await t.rec.discard();
    grant(stream);
    await started;
    expect(track.stopped).toBe(true);
    expect(t.recorder()).toBeUndefined();
    expect(t.upload()).toBeUndefined();
  });

  test("a refusal after discard is not an error", async () => {
    let refuse!: (e: Error) => void;
    const t = setup({ getUserMedia: () => new Promise((_r, reject) => (refuse = reject)) });
    const started = t.rec.start();
    await t.rec.discard();
    refuse(Object.assign(new Error(), { name: "NotAllowedError" }));
    await expect(started).resolves.toBeUndefined();
  });
});
