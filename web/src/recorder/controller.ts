// The recorder controller: turns the view's pointer and button input into machine events, runs
// the machine's effects against a VoiceRecording, and exposes the result as a small store
// (subscribe/getState, usable with useSyncExternalStore) for the views.
import { ApiError } from "../api/http";
import { beginHold, moveHold, releaseHold, type Hold } from "./gestures";
import {
  initialState,
  isCapturing,
  transition,
  type RecorderEffect,
  type RecorderEvent,
  type RecorderState,
} from "./machine";
import { MicError, micErrorReason, VoiceRecording } from "./recording";

/** What the views render from. A new object on every change. */
export interface ControllerState {
  /** The machine's state: what to show (record button, hold bar, locked bar, failure). */
  readonly machine: RecorderState;
  /** Live input level 0..1 while recording. */
  readonly level: number;
  /** A hint to show briefly (e.g. "Hold to record, release to send"); cleared by the next start. */
  readonly hint: string | null;
  /** The role=alert message while failed (mic refused/missing, send failed), else null. */
  readonly error: string | null;
}

/** The part of VoiceRecording the controller uses (tests pass a fake). */
export type RecordingHandle = Pick<
  VoiceRecording,
  "start" | "pause" | "resume" | "stop" | "discard" | "dispose" | "previewUrl" | "on" | "elapsedMs"
>;

/** Makes the recorder for one chat's composer. */
export function createRecorderController(options: RecorderControllerOptions): RecorderController {
  return new RecorderController(options);
}

export interface RecorderControllerOptions {
  chatId: string;
  /**
   * Posts the voice message: `POST /chats/{chatId}/messages {kind: "voice", upload_id}`. After a
   * failure it is called again with the same upload id, so it must reuse the same client_id for
   * an upload id (the server then answers the first message instead of a duplicate).
   */
  sendMessage(uploadId: string): Promise<unknown>;
  /** Plays a preview URL (the app's shared player). */
  playPreview?(url: string): void;
  /**
   * The current recording's upload id once the server created it, and null when that recording
   * is sent or discarded (e.g. so "Unsent recording" does not offer the one being made).
   */
  onUpload?(uploadId: string | null): void;
  /** A recording was stopped but kept on the server (the mic went away): offer it as unsent. */
  onKept?(): void;
  /** Makes the recording for a capture; defaults to a browser VoiceRecording. */
  createRecording?(chatId: string): RecordingHandle;
}

/** The recorder for one chat's composer. */
export class RecorderController {
  private snapshot: ControllerState = { machine: initialState, level: 0, hint: null, error: null };
  private readonly listeners = new Set<() => void>();
  private recording: RecordingHandle | null = null;
  private unlisten: Array<() => void> = [];
  private hold: Hold | null = null;
  private disposed = false;

  constructor(private readonly options: RecorderControllerOptions) {}

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getState = (): ControllerState => this.snapshot;

  /** Pointer down on "Record voice message" at (x, y), time t in ms. */
  press(x: number, y: number, t: number): void {
    const before = this.snapshot.machine;
    this.dispatch({ type: "press" });
    this.hold = this.snapshot.machine !== before ? beginHold({ x, y, t }) : null;
  }

  /** Pointer move while pressed: may cancel (slide left) or lock (slide up). */
  move(x: number, y: number, t: number): void {
    if (!this.hold) return;
    const hold = moveHold(this.hold, { x, y, t });
    const decided = hold.outcome !== this.hold.outcome;
    this.hold = hold;
    if (decided && hold.outcome !== "none") this.dispatch({ type: hold.outcome });
  }

  /** Pointer up (or cancel) at time t: a short press is a click (locks), a long one sends. */
  release(t: number): void {
    const hold = this.hold;
    this.hold = null;
    if (!hold) return;
    const outcome = releaseHold(hold, t);
    if (outcome === "click") this.dispatch({ type: "click" });
    else if (outcome === "release") {
      if (this.recording) this.dispatch({ type: "tick", elapsedMs: this.recording.elapsedMs });
      this.dispatch({ type: "release" });
    }
  }

  /** Enter or Space on "Record voice message": a locked recording. */
  key(): void {
    this.dispatch({ type: "key" });
  }

  pause(): void {
    this.dispatch({ type: "pause" });
  }

  resume(): void {
    this.dispatch({ type: "resume" });
  }

  delete(): void {
    this.dispatch({ type: "delete" });
  }

  send(): void {
    this.dispatch({ type: "send" });
  }

  /** Plays what was recorded so far (while paused); returns the URL, or null if nothing yet. */
  playPreview(): string | null {
    const url = this.recording?.previewUrl() ?? null;
    if (url) this.options.playPreview?.(url);
    return url;
  }

  /**
   * Runs one machine event and its effects. Public for tests and for input the helpers above do
   * not cover; views use the helpers.
   */
  dispatch(event: RecorderEvent): void {
    if (this.disposed) return;
    const prev = this.snapshot.machine;
    const { state, effects } = transition(prev, event);
    let { level, hint } = this.snapshot;
    if (state.kind !== prev.kind && state.kind !== "idle") hint = null;
    if (!isCapturing(state)) level = 0;
    for (const effect of effects) if (effect.type === "hint") hint = effect.text;
    const error = state.kind === "failed" ? state.message : null;
    this.set({ machine: state, level, hint, error });
    for (const effect of effects) this.run(effect);
  }

  /**
   * The composer goes away (chat closed). A recording in progress is stopped and left on the
   * server as a draft (offered again as "Unsent recording"); one still waiting for the mic is
   * discarded. A send in progress finishes.
   */
  dispose(): void {
    if (this.disposed) return;
    const state = this.snapshot.machine;
    const recording = this.recording;
    if (recording && state.kind === "acquiring") void recording.discard();
    else if (recording && isCapturing(state)) {
      recording.stop().then(
        () => recording.dispose(),
        () => recording.dispose(),
      );
    }
    this.stopListening();
    this.disposed = true;
    this.listeners.clear();
  }

  private run(effect: RecorderEffect): void {
    switch (effect.type) {
      case "startCapture":
        return this.startCapture();
      case "discard":
        return this.discardCapture();
      case "keep":
        return this.keepCapture();
      case "pauseCapture":
        return this.recording?.pause();
      case "resumeCapture":
        return this.recording?.resume();
      case "finishAndSend":
        return this.finishAndSend();
      case "hint":
      case "error":
        return; // already in the snapshot
    }
  }

  private startCapture(): void {
    // A recording still being given up must not be touched; it releases itself.
    this.stopListening();
    const create =
      this.options.createRecording ?? ((chatId: string) => new VoiceRecording(chatId));
    const recording = create(this.options.chatId);
    this.recording = recording;
    const current = () => this.recording === recording;
    this.unlisten = [
      recording.on("level", (level) => {
        if (current() && isCapturing(this.snapshot.machine)) this.set({ ...this.snapshot, level });
      }),
      recording.on("elapsed", (elapsedMs) => {
        if (current()) this.dispatch({ type: "tick", elapsedMs });
      }),
      recording.on("upload", (uploadId) => {
        if (current()) this.options.onUpload?.(uploadId);
      }),
      recording.on("error", (err) => {
        if (current() && err instanceof MicError) {
          this.dispatch({ type: "micError", reason: err.reason });
        }
        // Other errors (the recorder itself) surface when sending.
      }),
    ];
    recording.start().then(
      () => {
        if (current()) this.dispatch({ type: "micReady" });
        else void recording.discard(); // a stale capture: make sure its mic is off
      },
      (err: unknown) => {
        if (current()) this.dispatch({ type: "micError", reason: micErrorReason(err) });
      },
    );
  }

  /** Stop and release the mic; the upload stays on the server as an unsent draft. */
  private keepCapture(): void {
    const recording = this.recording;
    this.stopListening();
    this.recording = null;
    if (!recording) return;
    const kept = () => {
      recording.dispose();
      this.options.onUpload?.(null);
      this.options.onKept?.();
    };
    recording.stop().then(kept, kept);
  }

  private discardCapture(): void {
    const recording = this.recording;
    this.stopListening();
    this.recording = null;
    if (recording) {
      this.options.onUpload?.(null);
      void recording.discard().catch(() => {});
    }
  }

  private finishAndSend(): void {
    const recording = this.recording;
    if (!recording) {
      this.dispatch({ type: "sendFailed" });
      return;
    }
    recording
      .stop()
      .then((uploadId) => this.options.sendMessage(uploadId))
      .then(
        () => {
          if (this.recording !== recording) return;
          this.stopListening();
          this.recording = null;
          recording.dispose();
          this.options.onUpload?.(null);
          this.dispatch({ type: "sent" });
        },
        (err: unknown) => {
          if (this.recording !== recording) return;
          this.dispatch({ type: "sendFailed", text: sendFailureText(err) });
        },
      );
  }

  private stopListening(): void {
    for (const off of this.unlisten) off();
    this.unlisten = [];
  }

  private set(snapshot: ControllerState): void {
    const prev = this.snapshot;
    if (
      prev.machine === snapshot.machine &&
      prev.level === snapshot.level &&
      prev.hint === snapshot.hint &&
      prev.error === snapshot.error
    ) {
      return;
    }
    this.snapshot = snapshot;
    for (const listener of [...this.listeners]) listener();
  }
}

/** The words for a failed send: the server's detail when it gave one. */
function sendFailureText(err: unknown): string | undefined {
  if (err instanceof ApiError && err.message) {
    return `The voice message could not be sent: ${err.message}`;
  }
  return undefined;
}
