// VoiceRecording: one recording, from asking for the microphone to the last PATCH.
// It owns the mic stream, one MediaRecorder and the streaming tus upload (each 1 s chunk is
// pushed to the server as it arrives, so a closed tab leaves a draft on the server, not nothing).
// It knows nothing of the UI: views and the controller subscribe to its typed events. It does not
// post the message; the caller sends `POST /chats/{id}/messages {kind: "voice", upload_id}`.
import { startRecordingUpload, type RecordingUpload, type RecordingUploadOptions } from "../api/tus";
import { Emitter } from "./emitter";
import type { MicErrorReason } from "./machine";

/** Recorder formats in order of preference (Opus first: the server remuxes it, no re-encode). */
export const MIME_TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/mp4"] as const;
export const AUDIO_BITS_PER_SECOND = 32000;
/** MediaRecorder timeslice: one chunk, hence one PATCH, per second. */
export const CHUNK_MS = 1000;
/** How long stop() waits for the recorder's stop event before ending the upload anyway. */
export const STOP_TIMEOUT_MS = 3000;
/** How often level and elapsed are emitted while recording (~30 Hz). */
export const LEVEL_INTERVAL_MS = 33;

/** getUserMedia failed, or the mic went away; `reason` picks the message shown. */
export class MicError extends Error {
  constructor(
    readonly reason: MicErrorReason,
    readonly cause?: unknown,
  ) {
    super(`microphone: ${reason}`);
    this.name = "MicError";
  }
}

/** Maps a getUserMedia / MediaRecorder failure to why the mic cannot be used. */
export function micErrorReason(err: unknown): MicErrorReason {
  if (err instanceof MicError) return err.reason;
  const name = (err as { name?: unknown } | null)?.name;
  switch (name) {
    case "NotAllowedError":
    case "SecurityError":
    case "PermissionDeniedError": // older Chromium
      return "denied";
    case "NotFoundError":
    case "OverconstrainedError":
    case "DevicesNotFoundError": // older Chromium
      return "missing";
    default:
      return "other";
  }
}

/** The first of MIME_TYPES the browser can record, or undefined (let it choose). */
export function pickMimeType(isTypeSupported: (type: string) => boolean): string | undefined {
  return MIME_TYPES.find((type) => {
    try {
      return isTypeSupported(type);
    } catch {
      return false;
    }
  });
}

/** The part of MediaRecorder used here (so tests can pass a fake). */
export interface RecorderLike {
  readonly state: "inactive" | "recording" | "paused";
  readonly mimeType: string;
  ondataavailable: ((event: { data: Blob }) => void) | null;
  onstop: (() => void) | null;
  onerror: ((event: unknown) => void) | null;
  start(timeslice?: number): void;
  stop(): void;
  pause(): void;
  resume(): void;
  requestData(): void;
}

/** A live input level, 0..1. */
export interface LevelMeter {
  level(): number;
  close(): void;
}

/** Everything a recording touches in the browser; each can be replaced (tests). */
export interface RecordingDeps {
  getUserMedia(constraints: MediaStreamConstraints): Promise<MediaStream>;
  isTypeSupported(type: string): boolean;
  createRecorder(stream: MediaStream, options: MediaRecorderOptions): RecorderLike;
  /** null when there is no Web Audio: the level stays 0. */
  createLevelMeter(stream: MediaStream): LevelMeter | null;
  startUpload(options: RecordingUploadOptions): RecordingUpload;
  now(): number;
}

export const browserDeps: RecordingDeps = {
  getUserMedia: (constraints) => {
    if (!navigator.mediaDevices?.getUserMedia) {
      // No mediaDevices at all: an insecure (http) page, or a browser without capture.
      return Promise.reject(new MicError("other"));
    }
    return navigator.mediaDevices.getUserMedia(constraints);
  },
  isTypeSupported: (type) =>
    typeof MediaRecorder !== "undefined" && MediaRecorder.isTypeSupported(type),
  createRecorder: (stream, options) => new MediaRecorder(stream, options) as unknown as RecorderLike,
  createLevelMeter: analyserLevelMeter,
  startUpload: (options) => startRecordingUpload(options),
  now: () => performance.now(),
};

/** The constraints asked for: one voice channel, cleaned up by the browser. */
export const MIC_CONSTRAINTS: MediaStreamConstraints = {
  audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
};

export interface VoiceRecordingEvents extends Record<string, unknown> {
  /** Input level 0..1, ~30 times a second while recording; 0 on pause. */
  level: number;
  /** Elapsed recorded time in ms (pauses excluded), with each level. */
  elapsed: number;
  /** The mic went away mid-recording (MicError), or the recorder failed. */
  error: Error;
  /** The draft's upload id, once the server has created it. */
  upload: string;
}

export type VoiceRecordingStatus =
  | "new"
  | "acquiring"
  | "recording"
  | "paused"
  | "stopped"
  | "discarded";

/**
 * One voice recording for one chat. Call start() once. The mic is always released: on stop(),
 * on discard(), on failure, and when discard() comes while the mic is still being asked for.
 */
export class VoiceRecording {
  private readonly deps: RecordingDeps;
  private readonly events = new Emitter<VoiceRecordingEvents>();
  private status: VoiceRecordingStatus = "new";
  private stream: MediaStream | null = null;
  private recorder: RecorderLike | null = null;
  private upload: RecordingUpload | null = null;
  private meter: LevelMeter | null = null;
  private ticker: ReturnType<typeof setInterval> | null = null;
  private startedAt = 0;
  private pausedAt: number | null = null;
  private pausedTotal = 0;
  private stoppedElapsed: number | null = null;
  private stopped: Promise<void> | null = null;
  private previewUrls: string[] = [];
  private type = "";

  constructor(
    readonly chatId: string,
    deps: Partial<RecordingDeps> = {},
  ) {
    this.deps = { ...browserDeps, ...deps };
  }

  on<K extends keyof VoiceRecordingEvents>(
    type: K,
    listener: (payload: VoiceRecordingEvents[K]) => void,
  ): () => void {
    return this.events.on(type, listener);
  }

  get state(): VoiceRecordingStatus {
    return this.status;
  }

  /** The recorder's mime type ("" before recording starts). */
  get mimeType(): string {
    return this.type;
  }

  /** Recorded time in ms, pauses excluded; frozen once stopped. */
  get elapsedMs(): number {
    if (this.stoppedElapsed !== null) return this.stoppedElapsed;
    if (this.status === "new" || this.status === "acquiring" || this.status === "discarded") {
      return 0;
    }
    const end = this.pausedAt ?? this.deps.now();
    return Math.max(0, end - this.startedAt - this.pausedTotal);
  }

  /**
   * Asks for the mic, then records and streams. Resolves once recording (or, if discard() came
   * first, once the late mic has been released). Rejects with MicError; nothing is left running.
   */
  async start(): Promise<void> {
    if (this.status !== "new") throw new Error("VoiceRecording.start: already started");
    this.status = "acquiring";
    let stream: MediaStream;
    try {
      stream = await this.deps.getUserMedia(MIC_CONSTRAINTS);
    } catch (err) {
      if (this.isDiscarded()) return;
      this.status = "discarded";
      throw new MicError(micErrorReason(err), err);
    }
    this.stream = stream;
    if (this.isDiscarded()) {
      // Given up (a short tap, a slide to cancel) while the browser was asking.
      this.releaseMic();
      return;
    }
    let recorder: RecorderLike;
    try {
      const mimeType = pickMimeType((t) => this.deps.isTypeSupported(t));
      recorder = this.deps.createRecorder(stream, {
        ...(mimeType ? { mimeType } : {}),
        audioBitsPerSecond: AUDIO_BITS_PER_SECOND,
      });
      // Started before the upload exists: its first chunk comes a second later, asynchronously.
      recorder.start(CHUNK_MS);
      // Read after start(): without a requested type, browsers fill it in only then.
      this.type = recorder.mimeType || mimeType || "audio/webm";
    } catch (err) {
      this.status = "discarded";
      this.releaseMic();
      throw new MicError("other", err);
    }
    this.recorder = recorder;
    this.upload = this.deps.startUpload({ chatId: this.chatId, contentType: this.type });
    this.upload.id.then(
      (id) => {
        if (!this.isDiscarded()) this.events.emit("upload", id);
      },
      () => {},
    );
    this.wireRecorder(recorder, this.upload);
    for (const track of stream.getAudioTracks()) {
      track.addEventListener("ended", () => this.fail(new MicError("missing")));
    }
    try {
      this.meter = this.deps.createLevelMeter(stream);
    } catch {
      this.meter = null; // no level meter is no reason not to record
    }
    this.startedAt = this.deps.now();
    this.status = "recording";
    this.ticker = setInterval(() => this.tick(), LEVEL_INTERVAL_MS);
  }

  /** Pauses recording; what was recorded so far is flushed (upload, preview). */
  pause(): void {
    if (this.status !== "recording" || !this.recorder) return;
    this.recorder.requestData();
    this.recorder.pause();
    this.pausedAt = this.deps.now();
    this.status = "paused";
    this.events.emit("level", 0);
    this.events.emit("elapsed", this.elapsedMs);
  }

  resume(): void {
    if (this.status !== "paused" || !this.recorder) return;
    this.recorder.resume();
    if (this.pausedAt !== null) this.pausedTotal += this.deps.now() - this.pausedAt;
    this.pausedAt = null;
    this.status = "recording";
  }

  /**
   * An object URL of everything recorded so far (for "Play recording" while paused), or null
   * before the first chunk. URLs are revoked by discard() and dispose().
   */
  previewUrl(): string | null {
    const bytes = this.upload?.bytes();
    if (!bytes || bytes.size === 0) return null;
    const url = URL.createObjectURL(bytes);
    this.previewUrls.push(url);
    return url;
  }

  /**
   * Stops recording and releases the mic; the final chunk goes out in the last PATCH (with
   * Upload-Length). Resolves the upload id once the server has every byte. Safe to call again
   * after a failure: the upload resumes from the server's offset. Rejects with UploadError.
   */
  async stop(): Promise<string> {
    if (!this.upload) throw new Error("VoiceRecording.stop: not recording");
    if (this.status === "discarded") throw new Error("VoiceRecording.stop: discarded");
    await this.stopCapture();
    return this.upload.finish();
  }

  /** Stops recording, releases the mic and deletes the draft on the server. Idempotent. */
  async discard(): Promise<void> {
    const wasStarted = this.status !== "new";
    this.status = "discarded";
    this.events.emit("level", 0);
    this.endCapture();
    if (this.recorder && this.recorder.state !== "inactive") {
      this.recorder.ondataavailable = null;
      this.recorder.onstop = null;
      try {
        this.recorder.stop();
      } catch {
        // already stopped
      }
    }
    this.revokePreviews();
    this.events.clear();
    if (wasStarted && this.upload) await this.upload.abort();
  }

  /** Lets go of local resources after the message was sent (preview URLs, listeners). */
  dispose(): void {
    this.endCapture();
    this.revokePreviews();
    this.events.clear();
  }

  private wireRecorder(recorder: RecorderLike, upload: RecordingUpload): void {
    // A chunk that arrives with the recorder inactive may be the last one (the one that follows
    // stop()). It is held until the next chunk or the stop event, which the spec fires after the
    // last chunk: pushed together with end(), it becomes the PATCH that carries Upload-Length.
    // (Ending on "inactive" alone would be wrong: a chunk asked for by requestData() on pause can
    // still arrive after stop().)
    let held: Blob | null = null;
    recorder.ondataavailable = (event) => {
      if (held) upload.push(held);
      held = null;
      if (event.data.size === 0) return;
      if (recorder.state === "inactive") held = event.data;
      else upload.push(event.data);
    };
    recorder.onstop = () => {
      if (held) upload.push(held);
      held = null;
      upload.end();
    };
    recorder.onerror = (event) => {
      const err = (event as { error?: unknown } | null)?.error;
      this.fail(err instanceof Error ? err : new MicError("other", event));
    };
  }

  /** A method, not a comparison, so the check after an await is not narrowed away. */
  private isDiscarded(): boolean {
    return this.status === "discarded";
  }

  private tick(): void {
    if (this.status !== "recording") return;
    this.events.emit("level", clamp01(this.meter?.level() ?? 0));
    this.events.emit("elapsed", this.elapsedMs);
  }

  private stopCapture(): Promise<void> {
    if (!this.stopped) {
      const recorder = this.recorder;
      this.stoppedElapsed = this.elapsedMs;
      this.status = "stopped";
      this.events.emit("level", 0);
      this.stopped = new Promise<void>((resolve) => {
        if (!recorder || recorder.state === "inactive") return resolve();
        const onstop = recorder.onstop;
        // Should the stop event never come (a browser bug), end with what arrived.
        const timer = setTimeout(() => recorder.onstop?.(), STOP_TIMEOUT_MS);
        recorder.onstop = () => {
          clearTimeout(timer);
          recorder.onstop = null;
          onstop?.();
          resolve();
        };
        recorder.stop();
      }).finally(() => this.endCapture());
    }
    return this.stopped;
  }

  private fail(err: Error): void {
    if (this.status !== "recording" && this.status !== "paused") return;
    this.events.emit("error", err);
  }

  /** Ticker, level meter and mic off. Idempotent. */
  private endCapture(): void {
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
    this.meter?.close();
    this.meter = null;
    this.releaseMic();
  }

  private releaseMic(): void {
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = null;
  }

  private revokePreviews(): void {
    for (const url of this.previewUrls) URL.revokeObjectURL(url);
    this.previewUrls = [];
  }
}

function clamp01(value: number): number {
  return Number.isFinite(value) ? Math.min(1, Math.max(0, value)) : 0;
}

/**
 * The level from an AnalyserNode: RMS of the waveform in dB, mapped from -60..0 dB to 0..1
 * (speech sits around the middle).
 */
export function analyserLevelMeter(stream: MediaStream): LevelMeter | null {
  const Ctx =
    globalThis.AudioContext ??
    (globalThis as { webkitAudioContext?: typeof AudioContext }).webkitAudioContext;
  if (!Ctx) return null;
  const context = new Ctx();
  void context.resume().catch(() => {});
  const source = context.createMediaStreamSource(stream);
  const analyser = context.createAnalyser();
  analyser.fftSize = 1024;
  source.connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  return {
    level() {
      analyser.getFloatTimeDomainData(samples);
      return levelFromSamples(samples);
    },
    close() {
      source.disconnect();
      void context.close().catch(() => {});
    },
  };
}

/** 0..1 from PCM samples in -1..1: RMS in dB, -60 dB → 0, 0 dB → 1. */
export function levelFromSamples(samples: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
  const rms = Math.sqrt(sum / Math.max(1, samples.length));
  if (rms <= 0) return 0;
  return clamp01((20 * Math.log10(rms) + 60) / 60);
}
