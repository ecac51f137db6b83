// The two uploads of src/api/tus.ts against an in-memory tus server (a fake tus-js-client
// HttpStack), so the real tus-js-client runs: creation, PATCH offsets, retries, termination.
import { describe, expect, test, vi } from "vitest";
import type { HttpRequest, HttpResponse, HttpStack, PreviousUpload, UrlStorage } from "tus-js-client";
import {
  UploadError,
  startRecordingUpload,
  uploadFile,
  type TusOverrides,
} from "../src/api/tus";

interface Logged {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string | null;
}

interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/** What the test can make the server do with a request before it is handled normally. */
type Interceptor = (req: Logged) => Answer | "network" | { keep: number } | undefined;

/** A tus 1.0.0 server in memory: creation, defer-length, termination. */
class FakeTusServer implements HttpStack {
  readonly log: Logged[] = [];
  readonly uploads = new Map<
    string,
    { data: string; length: number | null; metadata: Record<string, string> }
  >();
  intercept: Interceptor = () => undefined;
  /** Holds POST answers until released (to test a cancel during creation). */
  holdPosts: Promise<void> | null = null;
  private next = 1;

  createRequest(method: string, url: string): HttpRequest {
    return new FakeRequest(this, method, url);
  }

  getName(): string {
    return "fake";
  }

  requests(method: string): Logged[] {
    return this.log.filter((r) => r.method === method);
  }

  async handle(req: Logged): Promise<Answer> {
    if (req.method === "POST" && this.holdPosts) await this.holdPosts;
    const forced = this.intercept(req);
    if (forced === "network") throw new Error("network down");
    if (forced && "status" in forced) return forced;
    const id = req.url.split("/").pop()!;
    const upload = this.uploads.get(id);
    switch (req.method) {
      case "POST": {
        const newId = `u${this.next++}`;
        const length = req.headers["Upload-Length"];
        this.uploads.set(newId, {
          data: "",
          length: length === undefined ? null : Number(length),
          metadata: decodeMetadata(req.headers["Upload-Metadata"] ?? ""),
        });
        return { status: 201, headers: { Location: `/api/v1/uploads/${newId}` } };
      }
      case "HEAD": {
        if (!upload) return { status: 404 };
        const headers: Record<string, string> = { "Upload-Offset": String(upload.data.length) };
        if (upload.length !== null) headers["Upload-Length"] = String(upload.length);
        return { status: 200, headers };
      }
      case "PATCH": {
        if (!upload) return { status: 404 };
        if (Number(req.headers["Upload-Offset"]) !== upload.data.length) return { status: 409 };
        if (req.headers["Upload-Length"] !== undefined) {
          upload.length = Number(req.headers["Upload-Length"]);
        }
        const body = req.body ?? "";
        if (forced && "keep" in forced) {
          // The connection broke mid-body: the bytes that arrived are kept.
          upload.data += body.slice(0, forced.keep);
          throw new Error("connection reset");
        }
        upload.data += body;
        return { status: 204, headers: { "Upload-Offset": String(upload.data.length) } };
      }
      case "DELETE":
        if (!upload) return { status: 404 };
        this.uploads.delete(id);
        return { status: 204 };
    }
    return { status: 405 };
  }
}

class FakeRequest implements HttpRequest {
  private readonly headers: Record<string, string> = {};
  private aborted = false;

  constructor(
    private readonly server: FakeTusServer,
    private readonly method: string,
    private readonly url: string,
  ) {}

  getMethod = () => this.method;
  getURL = () => this.url;
  setHeader(name: string, value: string) {
    this.headers[name] = value;
  }
  getHeader = (name: string) => this.headers[name];
  setProgressHandler() {}
  getUnderlyingObject = () => null;
  abort() {
    this.aborted = true;
    return Promise.resolve();
  }

  async send(body: Blob | null = null): Promise<HttpResponse> {
    const logged: Logged = {
      method: this.method,
      url: this.url,
      headers: { ...this.headers },
      body: body ? await body.text() : null,
    };
    this.server.log.push(logged);
    const answer = await this.server.handle(logged);
    if (this.aborted) return new Promise(() => {}); // an aborted XHR never loads
    return {
      getStatus: () => answer.status,
      getHeader: (name: string) => answer.headers?.[name],
      getBody: () => answer.body ?? "",
      getUnderlyingObject: () => null,
    };
  }
}

function decodeMetadata(header: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of header.split(",").filter(Boolean)) {
    const [key, value = ""] = pair.trim().split(" ");
    out[key] = new TextDecoder().decode(Uint8Array.from(atob(value), (c) => c.charCodeAt(0)));
  }
  return out;
}

const problem = (status: number, code: string, detail: string): Answer => ({
  status,
  headers: { "Content-Type": "application/problem+json" },
  body: JSON.stringify({ type: "about:blank", title: "Refused", status, detail, code }),
});

/** A browser-like file reader for Blobs (tus-js-client's Node build only reads Buffers). */
const blobReader: TusOverrides["fileReader"] = {
  openFile: (input: Blob) =>
    Promise.resolve({
      size: input.size,
      slice: (start: number, end: number) =>
        Promise.resolve({ value: input.slice(start, end), done: end >= input.size }),
      close() {},
    }),
};

class MemoryUrlStorage implements UrlStorage {
  readonly entries = new Map<string, { fingerprint: string; upload: PreviousUpload }>();
  private n = 0;
  findAllUploads = async () => [...this.entries.values()].map((e) => e.upload);
  findUploadsByFingerprint = async (fingerprint: string) =>
    [...this.entries.values()].filter((e) => e.fingerprint === fingerprint).map((e) => e.upload);
  removeUpload = async (key: string) => {
    this.entries.delete(key);
  };
  addUpload = async (fingerprint: string, upload: PreviousUpload) => {
    const key = `k${++this.n}`;
    this.entries.set(key, { fingerprint, upload: { ...upload, urlStorageKey: key } });
    return key;
  };
}

const until = (check: () => unknown) => vi.waitFor(() => expect(check()).toBeTruthy(), { timeout: 2000, interval: 2 });
const chunk = (text: string) => new Blob([text], { type: "audio/webm" });

function recording(server: FakeTusServer, retryDelays: number[] = [0, 0]) {
  return startRecordingUpload(
    { chatId: "c42", contentType: "audio/webm;codecs=opus" },
    { httpStack: server, retryDelays },
  );
}

describe("startRecordingUpload", () => {
  test("creates a deferred-length voice upload with the metadata", async () => {
    const server = new FakeTusServer();
    const up = recording(server);
    expect(await up.id).toBe("u1");
    const [post] = server.requests("POST");
    expect(post.url).toBe("/api/v1/uploads");
    expect(post.headers["Tus-Resumable"]).toBe("1.0.0");
    expect(post.headers["Upload-Defer-Length"]).toBe("1");
    expect(post.headers["Upload-Length"]).toBeUndefined();
    const metadata = server.uploads.get("u1")!.metadata;
    expect(metadata).toMatchObject({
      content_type: "audio/webm;codecs=opus",
      chat_id: "c42",
      kind: "voice",
    });
    expect(metadata.filename).toMatch(/^voice-.*\.webm$/);
    await up.abort();
  });

  test("each chunk is one PATCH as it arrives; the last PATCH carries Upload-Length", async () => {
    const server = new FakeTusServer();
    const up = recording(server);
    await up.id;
    up.push(chunk("aaaa"));
    await until(() => server.uploads.get("u1")!.data === "aaaa");
    up.push(chunk("bbb"));
    await until(() => server.uploads.get("u1")!.data === "aaaabbb");
    up.push(chunk("cc"));
    up.end();
    expect(await up.finish()).toBe("u1");

    const patches = server.requests("PATCH");
    expect(patches.map((p) => p.body)).toEqual(["aaaa", "bbb", "cc"]);
    expect(patches.map((p) => p.headers["Upload-Offset"])).toEqual(["0", "4", "7"]);
    expect(patches.map((p) => p.headers["Upload-Length"])).toEqual([undefined, undefined, "9"]);
    expect(patches[0].headers["Content-Type"]).toBe("application/offset+octet-stream");
    expect(server.uploads.get("u1")).toMatchObject({ data: "aaaabbbcc", length: 9 });
  });

  test("chunks pushed before the upload exists go out once it does", async () => {
    const server = new FakeTusServer();
    const up = recording(server);
    up.push(chunk("early"));
    up.push(chunk("bird"));
    expect(await up.finish()).toBe("u1");
    expect(server.uploads.get("u1")).toMatchObject({ data: "earlybird", length: 9 });
  });

  test("end with nothing pending sends a PATCH that only sets the length", async () => {
    const server = new FakeTusServer();
    const up = recording(server);
    up.push(chunk("abc"));
    await until(() => server.uploads.get("u1")?.data === "abc");
    await new Promise((r) => setTimeout(r, 5));
    expect(await up.finish()).toBe("u1");
    const last = server.requests("PATCH").at(-1)!;
    expect(last).toMatchObject({ body: null, headers: { "Upload-Length": "3", "Upload-Offset": "3" } });
  });

  test("a PATCH cut off mid-body is resumed from the server's offset", async () => {
    const server = new FakeTusServer();
    const up = recording(server);
    up.push(chunk("0123"));
    await until(() => server.uploads.get("u1")?.data === "0123");
    let broken = false;
    server.intercept = (req) => {
      if (req.method === "PATCH" && !broken) {
        broken = true;
        return { keep: 2 };
      }
      return undefined;
    };
    up.push(chunk("4567"));
    up.end();
    expect(await up.finish()).toBe("u1");
    expect(server.uploads.get("u1")).toMatchObject({ data: "01234567", length: 8 });
    expect(server.requests("HEAD")).toHaveLength(1);
    expect(server.requests("PATCH").at(-1)).toMatchObject({
      body: "67",
      headers: { "Upload-Offset": "6", "Upload-Length": "8" },
    });
  });

  test("after retries run out, a new chunk or finish() resumes the upload", async () => {
    const server = new FakeTusServer();
    const up = recording(server, [0]);
    up.push(chunk("abc"));
    await until(() => server.uploads.get("u1")?.data === "abc");
    let down = true;
    server.intercept = (req) => (down && req.method !== "DELETE" ? "network" : undefined);
    up.push(chunk("def")); // PATCH fails, one retry (HEAD) fails, then tus gives up
    await until(() => server.log.length >= 4);
    await new Promise((r) => setTimeout(r, 10));
    down = false;
    up.push(chunk("ghi")); // restarts the upload by itself
    await until(() => server.uploads.get("u1")!.data === "abcdefghi");
    expect(await up.finish()).toBe("u1");
    expect(server.uploads.get("u1")).toMatchObject({ data: "abcdefghi", length: 9 });
  });

  test("finish() after a failed finish tries again from the server's offset", async () => {
    const server = new FakeTusServer();
    const up = recording(server, []);
    up.push(chunk("abc"));
    await until(() => server.uploads.get("u1")?.data === "abc");
    server.intercept = (req) => (req.method === "PATCH" ? "network" : undefined);
    up.push(chunk("def"));
    const first = await up.finish().catch((e: unknown) => e);
    expect(first).toBeInstanceOf(UploadError);
    expect(first).toMatchObject({ status: 0, network: true });
    server.intercept = () => undefined;
    expect(await up.finish()).toBe("u1");
    expect(server.uploads.get("u1")).toMatchObject({ data: "abcdef", length: 6 });
  });

  test("a refusal rejects with the problem's detail and status", async () => {
    const server = new FakeTusServer();
    server.intercept = (req) =>
      req.method === "PATCH" ? problem(413, "payload_too_large", "The recording is too long.") : undefined;
    const up = recording(server);
    up.push(chunk("abc"));
    up.end();
    const err = await up.finish().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UploadError);
    expect(err).toMatchObject({
      status: 413,
      code: "payload_too_large",
      detail: "The recording is too long.",
      message: "The recording is too long.",
    });
    expect(server.requests("PATCH")).toHaveLength(1); // a 4xx is not retried
  });

  test("abort deletes the draft on the server (termination)", async () => {
    const server = new FakeTusServer();
    const up = recording(server);
    up.push(chunk("abc"));
    await until(() => server.uploads.get("u1")?.data === "abc");
    await up.abort();
    expect(server.requests("DELETE").map((r) => r.url)).toEqual(["/api/v1/uploads/u1"]);
    expect(server.uploads.size).toBe(0);
    await expect(up.finish()).rejects.toMatchObject({ aborted: true });
    up.push(chunk("late")); // ignored, no throw
    await new Promise((r) => setTimeout(r, 5));
    expect(server.requests("PATCH")).toHaveLength(1);
  });

  test("abort while the upload is being created still deletes it once created", async () => {
    const server = new FakeTusServer();
    let release!: () => void;
    server.holdPosts = new Promise((r) => (release = r));
    const up = recording(server);
    up.push(chunk("abc"));
    await until(() => server.requests("POST").length === 1);
    const aborted = up.abort();
    await expect(up.id).rejects.toMatchObject({ aborted: true });
    release();
    await aborted;
    expect(server.requests("DELETE").map((r) => r.url)).toEqual(["/api/v1/uploads/u1"]);
    expect(server.requests("PATCH")).toHaveLength(0);
    expect(server.uploads.size).toBe(0);
  });

  test("abort before anything was sent sends nothing", async () => {
    const server = new FakeTusServer();
    const up = recording(server);
    await up.abort();
    await new Promise((r) => setTimeout(r, 10));
    expect(server.uploads.size).toBe(0);
    expect(server.requests("PATCH")).toHaveLength(0);
  });
});

describe("uploadFile", () => {
  const file = (text: string, name = "song.mp3", type = "audio/mpeg") =>
    Object.assign(new Blob([text], { type }), { name, lastModified: 1 });

  function start(
    server: FakeTusServer,
    f: Blob,
    onProgress?: (sent: number, total: number) => void,
    extra: TusOverrides = {},
  ) {
    return uploadFile(f, { kind: "audio", chatId: "c7" }, onProgress, {
      httpStack: server,
      retryDelays: [0, 0],
      fileReader: blobReader,
      fingerprint: async (input: File) => `fp-${input.name}-${input.size}`,
      ...extra,
    });
  }

  test("uploads with progress and resolves the upload id", async () => {
    const server = new FakeTusServer();
    const progress: Array<[number, number]> = [];
    const up = start(server, file("hello world"), (s, t) => progress.push([s, t]));
    expect(await up.promise).toBe("u1");
    expect(server.uploads.get("u1")).toMatchObject({
      data: "hello world",
      length: 11,
      metadata: { filename: "song.mp3", content_type: "audio/mpeg", kind: "audio", chat_id: "c7" },
    });
    expect(server.requests("POST")[0].headers["Upload-Length"]).toBe("11");
    expect(progress.at(-1)).toEqual([11, 11]);
  });

  test("chat_id is left out when there is no chat", async () => {
    const server = new FakeTusServer();
    const up = uploadFile(file("x"), { kind: "audio" }, undefined, {
      httpStack: server,
      fileReader: blobReader,
      fingerprint: async () => "fp",
    });
    await up.promise;
    expect(server.uploads.get("u1")!.metadata).toEqual({
      filename: "song.mp3",
      content_type: "audio/mpeg",
      kind: "audio",
    });
  });

  test("a refused file rejects with the server's detail and status", async () => {
    for (const [status, code, detail] of [
      [415, "unsupported_media", "This is not an audio file."],
      [413, "payload_too_large", "The file is over 2 GiB."],
      [422, "invalid", "The file is truncated."],
    ] as const) {
      const server = new FakeTusServer();
      server.intercept = (req) => (req.method === "PATCH" ? problem(status, code, detail) : undefined);
      const err = await start(server, file("abc")).promise.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UploadError);
      expect(err).toMatchObject({ status, code, detail, message: detail, aborted: false });
    }
  });

  test("a refusal without problem JSON still says something in words", async () => {
    const server = new FakeTusServer();
    server.intercept = (req) =>
      req.method === "POST" ? { status: 413, body: "<html>Request Entity Too Large</html>" } : undefined;
    const err = await start(server, file("abc")).promise.catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 413, message: "The file is too big." });
  });

  test("cancel stops and deletes the upload; the promise rejects as aborted", async () => {
    const server = new FakeTusServer();
    server.intercept = (req) => (req.method === "PATCH" ? "network" : undefined);
    const up = start(server, file("abc"), undefined, { retryDelays: [50, 50, 50] });
    await until(() => server.requests("PATCH").length === 1);
    await up.cancel();
    await expect(up.promise).rejects.toMatchObject({ aborted: true });
    expect(server.requests("DELETE")).toHaveLength(1);
    expect(server.uploads.size).toBe(0);
  });

  test("after a network drop, the same file resumes where the server stopped", async () => {
    const server = new FakeTusServer();
    const storage = new MemoryUrlStorage();
    server.intercept = (req) => (req.method === "PATCH" ? { keep: 4 } : undefined);
    const first = start(server, file("0123456789"), undefined, { urlStorage: storage, retryDelays: [] });
    await expect(first.promise).rejects.toMatchObject({ status: 0 });
    expect(server.uploads.get("u1")!.data).toBe("0123");
    expect(storage.entries.size).toBe(1);

    server.intercept = () => undefined;
    const again = start(server, file("0123456789"), undefined, { urlStorage: storage });
    expect(await again.promise).toBe("u1");
    expect(server.requests("POST")).toHaveLength(1);
    expect(server.requests("PATCH").at(-1)).toMatchObject({ body: "456789", headers: { "Upload-Offset": "4" } });
    expect(server.uploads.get("u1")!.data).toBe("0123456789");
    expect(storage.entries.size).toBe(0); // forgotten on success
  });

  test("an earlier upload of the same file to another chat is not resumed", async () => {
    const server = new FakeTusServer();
    const storage = new MemoryUrlStorage();
    await storage.addUpload("fp-song.mp3-3", {
      size: 3,
      metadata: { filename: "song.mp3", content_type: "audio/mpeg", kind: "audio", chat_id: "other" },
      creationTime: "",
      urlStorageKey: "",
      uploadUrl: "/api/v1/uploads/u999",
      parallelUploadUrls: null,
    });
    expect(await start(server, file("abc"), undefined, { urlStorage: storage }).promise).toBe("u1");
    expect(server.requests("HEAD")).toHaveLength(0);
  });
});
