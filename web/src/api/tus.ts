// Every upload goes through tus-js-client against POST /api/v1/uploads (API.md "Uploads": tus
// 1.0.0 core + creation + creation-defer-length + termination). Auth is the same-origin session
// cookie, which XHR sends by itself, so no headers are set here.
//
// Two kinds of upload:
// - startRecordingUpload: a voice recording streamed while it is made. The length is deferred, a
//   GrowingSource hands tus each MediaRecorder chunk as soon as it exists (one PATCH per chunk),
//   and the last PATCH carries Upload-Length.
// - uploadFile: a picked or shared audio file, with progress, cancel and resume after a network
//   drop (tus-js-client's fingerprint + URL storage remember where it went).
//
// Failures reject with UploadError (an ApiError): the server's problem `detail` in words, its
// `status` (0 for the network), `aborted` when the caller cancelled.
import { DetailedError, Upload } from "tus-js-client";
import type { FileSource, HttpRequest, SliceResult, UploadOptions } from "tus-js-client";
import { API, ApiError } from "./http";

export const UPLOADS_ENDPOINT = `${API}/uploads`;
/** Waits before each retry of a failed request (network error, 5xx, 409, 423). */
export const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000];
/** PATCH size for files: big enough to be fast, small enough for proxies and progress. */
export const FILE_CHUNK_BYTES = 8 * 1024 * 1024;

/** A failed or cancelled upload. `message` is the reason in words (the problem's detail). */
export class UploadError extends ApiError {
  constructor(
    status: number,
    code: string,
    readonly detail: string,
    readonly aborted = false,
  ) {
    super(status, code, detail);
    this.name = "UploadError";
  }
}

const FALLBACK_DETAIL: Record<number, string> = {
  413: "The file is too big.",
  415: "This file is not audio.",
  422: "The file could not be read as audio.",
};

/**
 * Turns whatever tus-js-client reported into an UploadError. A server answer's problem JSON
 * (tus-js-client's DetailedError.originalResponse body) gives detail, status and code; no answer
 * at all is a network failure (status 0).
 */
export function toUploadError(err: unknown): UploadError {
  if (err instanceof UploadError) return err;
  const response = err instanceof DetailedError ? err.originalResponse : null;
  if (!response) {
    return new UploadError(0, "network", "The upload failed: no connection to the server.");
  }
  const status = response.getStatus();
  let code = "error";
  let detail = FALLBACK_DETAIL[status] ?? `The upload failed (HTTP ${status}).`;
  try {
    const problem = JSON.parse(response.getBody() || "null");
    if (problem && typeof problem === "object") {
      if (typeof problem.code === "string") code = problem.code;
      if (typeof problem.detail === "string" && problem.detail) detail = problem.detail;
      else if (typeof problem.title === "string" && problem.title) detail = problem.title;
    }
  } catch {
    // Not problem JSON (a proxy's error page): keep the fallback.
  }
  return new UploadError(status, code, detail);
}

const cancelledError = () => new UploadError(0, "aborted", "The upload was cancelled.", true);

/** The upload id at the end of an upload URL (`…/api/v1/uploads/{id}`). */
export function uploadIdFromUrl(url: string): string {
  const path = new URL(url, "http://localhost").pathname;
  return decodeURIComponent(path.split("/").filter(Boolean).pop() ?? "");
}

// ---------------------------------------------------------------------------------------------
// The growing source

interface Waiter {
  start: number;
  end: number;
  resolve: (result: SliceResult) => void;
  reject: (err: Error) => void;
}

/**
 * A tus FileSource over bytes that are still arriving (a recording). Promises:
 * - `slice(start, end)` resolves as soon as there is at least one byte past `start` (with the
 *   bytes from `start` up to `end` or the last byte so far), or once the stream has ended;
 * - `done` is true only when the slice reaches the end of an ended stream, so tus sends
 *   Upload-Length with exactly the last bytes (`value` is null when there are none left);
 * - every byte is kept, so tus can slice again from an earlier offset after a failed PATCH;
 * - a `push()` and an `end()` in the same task are seen together by a waiting slice, so the
 *   final chunk and Upload-Length go in one PATCH.
 * Not a byte-limited buffer: recordings are small (32 kbit/s is 14 MB an hour).
 */
export class GrowingSource implements FileSource {
  private readonly parts: Blob[] = [];
  private joined: Blob | null = null;
  private length = 0;
  private ended = false;
  private cancelled: Error | null = null;
  private waiters: Waiter[] = [];
  private flushQueued = false;

  constructor(private readonly type = "") {}

  /** Bytes received so far. (tus reads it only for uploads of known length.) */
  get size(): number {
    return this.length;
  }

  /** True once end() was called: no more bytes will come. */
  get isEnded(): boolean {
    return this.ended;
  }

  /** Appends bytes. Empty chunks are ignored; pushing after end() or cancel() throws. */
  push(chunk: Blob): void {
    if (this.ended || this.cancelled) throw new Error("GrowingSource: push after end");
    if (chunk.size === 0) return;
    this.parts.push(chunk);
    this.length += chunk.size;
    this.joined = null;
    this.queueFlush();
  }

  /** Marks the end of the bytes. Idempotent. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.queueFlush();
  }

  /** Fails pending and future slices (the upload was aborted); keeps nothing waiting. */
  cancel(reason: Error = cancelledError()): void {
    this.cancelled = reason;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(reason);
  }

  /** Everything received so far, as one Blob. */
  bytes(): Blob {
    if (!this.joined) this.joined = new Blob(this.parts, { type: this.type });
    return this.joined;
  }

  slice(start: number, end: number): Promise<SliceResult> {
    if (this.cancelled) return Promise.reject(this.cancelled);
    if (this.canAnswer(start)) return Promise.resolve(this.read(start, end));
    return new Promise((resolve, reject) => this.waiters.push({ start, end, resolve, reject }));
  }

  /** Called by tus when the upload succeeded. The bytes stay (they cost little and may be read). */
  close(): void {}

  private canAnswer(start: number): boolean {
    return this.ended || this.length > start;
  }

  private read(start: number, end: number): SliceResult {
    const stop = Math.min(end, this.length);
    const done = this.ended && stop >= this.length;
    if (start >= stop) return { value: null, done };
    return { value: this.bytes().slice(start, stop, this.type), done };
  }

  private queueFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      if (this.cancelled) return;
      const waiting = this.waiters;
      this.waiters = [];
      for (const w of waiting) {
        if (this.canAnswer(w.start)) w.resolve(this.read(w.start, w.end));
        else this.waiters.push(w);
      }
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Shared plumbing

/** Test seams: tus options that replace the browser's XHR, storage and file reading. */
export type TusOverrides = Pick<
  UploadOptions,
  "endpoint" | "retryDelays" | "httpStack" | "urlStorage" | "fingerprint" | "fileReader"
>;

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {}); // a failure nobody awaits is not an unhandled rejection
  return { promise, resolve, reject };
}

/**
 * Cancelling a tus upload so that nothing is left on the server. tus-js-client's abort(true)
 * only terminates an upload whose URL it knows; while the creating POST is in flight it would
 * drop the answer, and the draft would stay on the server (and come back as "Unsent recording").
 * So while creating, the POST is let finish and the upload is terminated once its URL arrives.
 */
class Canceller {
  private upload: Upload | null = null;
  private creating = false;
  private wanted: Deferred<void> | null = null;

  get cancelled(): boolean {
    return this.wanted !== null;
  }

  /** Hooks to merge into the upload's options. */
  readonly hooks: Pick<
    UploadOptions,
    "onBeforeRequest" | "onAfterResponse" | "onShouldRetry"
  > = {
    onBeforeRequest: (req: HttpRequest) => {
      // Once cancelled, only the DELETE may go out.
      if (this.cancelled && req.getMethod() !== "DELETE") throw cancelledError();
      if (req.getMethod() === "POST") this.creating = true;
    },
    onAfterResponse: (req: HttpRequest) => {
      if (req.getMethod() === "POST") this.creating = false;
    },
    onShouldRetry: (err) => {
      this.creating = false;
      return !this.cancelled && defaultShouldRetry(err);
    },
  };

  attach(upload: Upload): void {
    this.upload = upload;
  }

  /** Call from onUploadUrlAvailable: a cancel that waited for the URL terminates now. */
  urlAvailable(): void {
    if (this.wanted && this.upload) this.finish(this.upload.abort(true));
  }

  /** Call from onError: a cancel waiting for the creation to end has nothing left to delete. */
  failed(): void {
    this.creating = false;
    if (this.wanted && this.upload && !this.upload.url) this.finish(this.upload.abort(false));
  }

  /** Stops the upload and deletes it on the server (resolves even if the DELETE fails). */
  cancel(): Promise<void> {
    if (this.wanted) return this.wanted.promise;
    const wanted = deferred<void>();
    this.wanted = wanted;
    const upload = this.upload;
    if (!upload) wanted.resolve();
    else if (upload.url) this.finish(upload.abort(true));
    else if (!this.creating) this.finish(upload.abort(false));
    // else: urlAvailable() or failed() finishes it.
    return wanted.promise;
  }

  private finish(done: Promise<void>): void {
    const wanted = this.wanted;
    done.then(
      () => wanted?.resolve(),
      () => wanted?.resolve(), // the draft expires on the server anyway
    );
  }
}

/** tus-js-client's own rule: retry unless a 4xx other than 409/423, and only when online. */
function defaultShouldRetry(err: DetailedError): boolean {
  const status = err.originalResponse ? err.originalResponse.getStatus() : 0;
  const refused = status >= 400 && status < 500 && status !== 409 && status !== 423;
  const offline = typeof navigator !== "undefined" && navigator.onLine === false;
  return !refused && !offline;
}

function isRetryable(err: UploadError): boolean {
  return !err.aborted && (err.status === 0 || err.status >= 500 || err.status === 409 || err.status === 423);
}

// ---------------------------------------------------------------------------------------------
// Streaming a recording

export interface RecordingUploadOptions {
  chatId: string;
  /** The MediaRecorder's mimeType, e.g. "audio/webm;codecs=opus". */
  contentType: string;
  /** Defaults to voice-<time>.<ext from contentType>. */
  filename?: string;
}

/** A voice recording being streamed to the server. Made by startRecordingUpload. */
export interface RecordingUpload {
  /** The upload id, once the server has created the upload. Rejects if cancelled before that. */
  readonly id: Promise<string>;
  /** Appends a recorded chunk; it goes out in the next PATCH at once. */
  push(chunk: Blob): void;
  /** No more chunks: the next PATCH (with whatever is left) carries Upload-Length. */
  end(): void;
  /**
   * Ends the stream and resolves the upload id once the server has every byte (the last PATCH
   * answered). If the upload had stopped on an error, it starts again from the server's offset.
   * Rejects with UploadError.
   */
  finish(): Promise<string>;
  /** Stops uploading and deletes the draft on the server (tus termination). */
  abort(): Promise<void>;
  /** Everything pushed so far. */
  bytes(): Blob;
}

/** Starts a deferred-length tus upload (kind=voice) that streams chunks as they are pushed. */
export function startRecordingUpload(
  options: RecordingUploadOptions,
  overrides: TusOverrides = {},
): RecordingUpload {
  const source = new GrowingSource(options.contentType);
  const canceller = new Canceller();
  const id = deferred<string>();
  let run = deferred<string>();
  let status: "running" | "succeeded" | "failed" | "aborted" = "running";
  let lastError: UploadError | null = null;

  const upload = new Upload(source as unknown as Blob, {
    endpoint: UPLOADS_ENDPOINT,
    retryDelays: RETRY_DELAYS,
    ...overrides,
    ...canceller.hooks,
    uploadLengthDeferred: true,
    // The source is ours; the id reaches the caller, who can find drafts on the server.
    fileReader: { openFile: () => Promise.resolve(source) },
    storeFingerprintForResuming: false,
    metadata: {
      filename: options.filename ?? `voice-${timestamp()}${extensionFor(options.contentType)}`,
      content_type: options.contentType,
      chat_id: options.chatId,
      kind: "voice",
    },
    onUploadUrlAvailable: () => {
      if (upload.url) id.resolve(uploadIdFromUrl(upload.url));
      canceller.urlAvailable();
    },
    onSuccess: () => {
      status = "succeeded";
      run.resolve(uploadIdFromUrl(upload.url ?? ""));
    },
    onError: (err) => {
      canceller.failed();
      if (canceller.cancelled) return;
      status = "failed";
      lastError = toUploadError(err);
      run.reject(lastError);
    },
  });
  canceller.attach(upload);
  upload.start();

  const restart = () => {
    status = "running";
    run = deferred<string>();
    upload.start(); // with a URL: HEAD for the offset, then PATCH from there
  };

  return {
    id: id.promise,
    push(chunk) {
      if (status === "aborted") return;
      source.push(chunk);
      // A network drop outlasted tus's retries: each new chunk tries again.
      if (status === "failed" && lastError && isRetryable(lastError)) restart();
    },
    end() {
      source.end();
    },
    finish() {
      source.end();
      if (status === "failed") restart();
      return run.promise;
    },
    abort() {
      if (status !== "aborted") {
        status = "aborted";
        source.cancel();
        id.reject(cancelledError());
        run.reject(cancelledError());
      }
      return canceller.cancel();
    },
    bytes: () => source.bytes(),
  };
}

// ---------------------------------------------------------------------------------------------
// Uploading a file

export interface FileUploadOptions {
  kind: "audio" | "voice";
  chatId?: string;
  /** Defaults to the File's name. */
  filename?: string;
}

export interface FileUpload {
  /** The upload id once the server has every byte. Rejects with UploadError. */
  readonly promise: Promise<string>;
  /** Stops and deletes the upload on the server; `promise` rejects with `aborted: true`. */
  cancel(): Promise<void>;
}

/**
 * Uploads a file with progress. If an earlier upload of the same file for the same chat and kind
 * was cut off (network drop, closed tab), it resumes where the server stopped; the stored URL is
 * forgotten on success or cancel.
 */
export function uploadFile(
  file: Blob,
  options: FileUploadOptions,
  onProgress?: (bytesSent: number, bytesTotal: number) => void,
  overrides: TusOverrides = {},
): FileUpload {
  const name = options.filename ?? (file as Partial<File>).name ?? "audio";
  const metadata: Record<string, string> = {
    filename: name,
    content_type: file.type || "application/octet-stream",
    kind: options.kind,
  };
  if (options.chatId) metadata.chat_id = options.chatId;

  const canceller = new Canceller();
  const result = deferred<string>();
  const upload = new Upload(file, {
    endpoint: UPLOADS_ENDPOINT,
    retryDelays: RETRY_DELAYS,
    chunkSize: FILE_CHUNK_BYTES,
    ...overrides,
    ...canceller.hooks,
    metadata,
    storeFingerprintForResuming: true,
    removeFingerprintOnSuccess: true,
    onProgress: (sent, total) => onProgress?.(sent, total),
    onUploadUrlAvailable: () => canceller.urlAvailable(),
    onSuccess: () => result.resolve(uploadIdFromUrl(upload.url ?? "")),
    onError: (err) => {
      canceller.failed();
      result.reject(canceller.cancelled ? cancelledError() : toUploadError(err));
    },
  });
  canceller.attach(upload);

  upload
    .findPreviousUploads()
    .then((previous) => {
      const same = previous.find((p) => sameMetadata(p.metadata, metadata));
      if (same) upload.resumeFromPreviousUpload(same);
    })
    .catch(() => {}) // no storage: start afresh
    .then(() => {
      if (!canceller.cancelled) upload.start();
    });

  return {
    promise: result.promise,
    cancel() {
      result.reject(cancelledError());
      return canceller.cancel();
    },
  };
}

function sameMetadata(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if (a[k] !== b[k]) return false;
  return true;
}

function timestamp(): string {
  return new Date().toISOString().replace(/[:.]/g, "-");
}

/** A file extension for a recorder mime type ("audio/webm;codecs=opus" → ".webm"). */
export function extensionFor(contentType: string): string {
  const sub = contentType.split(";")[0].split("/")[1]?.trim().toLowerCase();
  if (sub === "mp4" || sub === "x-m4a" || sub === "aac") return ".m4a";
  if (sub === "mpeg") return ".mp3";
  return sub ? `.${sub}` : "";
}
