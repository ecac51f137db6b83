import { describe, expect, test } from "vitest";
import { GrowingSource, UploadError, extensionFor, uploadIdFromUrl } from "../src/api/tus";

const blob = (text: string) => new Blob([text]);
const text = async (value: Blob | null) => (value ? await value.text() : null);

/** Resolves to "pending" if the promise has not settled after a few turns of the event loop. */
async function settled<T>(promise: Promise<T>): Promise<T | "pending"> {
  const timeout = new Promise<"pending">((resolve) => setTimeout(() => resolve("pending"), 5));
  return Promise.race([promise, timeout]);
}

describe("GrowingSource.slice", () => {
  test("waits until there is a byte past start", async () => {
    const source = new GrowingSource("audio/webm");
    const pending = source.slice(0, Number.POSITIVE_INFINITY);
    expect(await settled(pending)).toBe("pending");
    source.push(blob("abc"));
    const { value, done } = await pending;
    expect(await text(value)).toBe("abc");
    expect(done).toBe(false);
  });

  test("answers at once with what exists past start, up to end", async () => {
    const source = new GrowingSource();
    source.push(blob("abc"));
    source.push(blob("def"));
    expect(await text((await source.slice(0, Infinity)).value)).toBe("abcdef");
    expect(await text((await source.slice(2, 4)).value)).toBe("cd");
    expect(await text((await source.slice(4, 100)).value)).toBe("ef");
    expect(await settled(source.slice(6, Infinity))).toBe("pending");
  });

  test("each chunk pushed wakes a waiting slice: one chunk, one PATCH", async () => {
    const source = new GrowingSource();
    const reads: string[] = [];
    let offset = 0;
    for (const chunk of ["one", "two", "three"]) {
      const pending = source.slice(offset, Infinity);
      source.push(blob(chunk));
      const { value } = await pending;
      const got = (await text(value))!;
      reads.push(got);
      offset += got.length;
    }
    expect(reads).toEqual(["one", "two", "three"]);
  });

  test("done only at the end of an ended stream, with the last bytes", async () => {
    const source = new GrowingSource();
    source.push(blob("abc"));
    source.end();
    expect(await source.slice(0, 2)).toMatchObject({ done: false });
    const last = await source.slice(2, Infinity);
    expect(await text(last.value)).toBe("c");
    expect(last.done).toBe(true);
  });

  test("a push and an end in the same task reach a waiting slice together", async () => {
    const source = new GrowingSource();
    source.push(blob("abc"));
    const pending = source.slice(3, Infinity);
    source.push(blob("xyz"));
    source.end();
    const { value, done } = await pending;
    expect(await text(value)).toBe("xyz");
    expect(done).toBe(true);
  });

  test("end with nothing left: no bytes, done (the PATCH that only sets Upload-Length)", async () => {
    const source = new GrowingSource();
    source.push(blob("abc"));
    const pending = source.slice(3, Infinity);
    await Promise.resolve();
    source.end();
    expect(await pending).toEqual({ value: null, done: true });
    expect(await source.slice(3, Infinity)).toEqual({ value: null, done: true });
  });

  test("an empty recording ends with no bytes at all", async () => {
    const source = new GrowingSource();
    source.end();
    expect(await source.slice(0, Infinity)).toEqual({ value: null, done: true });
    expect(source.size).toBe(0);
  });

  test("keeps every byte: a retry can slice again from an earlier offset", async () => {
    const source = new GrowingSource();
    source.push(blob("0123"));
    await source.slice(0, Infinity);
    source.push(blob("4567"));
    await source.slice(4, Infinity);
    source.end();
    // The PATCH at 4 failed after the server kept 2 bytes: resume from 6, or even from 0.
    const resumed = await source.slice(6, Infinity);
    expect(await text(resumed.value)).toBe("67");
    expect(resumed.done).toBe(true);
    const again = await source.slice(0, Infinity);
    expect(await text(again.value)).toBe("01234567");
    expect(again.done).toBe(true);
  });

  test("empty chunks are ignored and do not wake a slice", async () => {
    const source = new GrowingSource();
    const pending = source.slice(0, Infinity);
    source.push(new Blob([]));
    expect(await settled(pending)).toBe("pending");
    source.push(blob("a"));
    expect(await text((await pending).value)).toBe("a");
  });

  test("size, bytes() and the type follow what was pushed", async () => {
    const source = new GrowingSource("audio/ogg;codecs=opus");
    source.push(blob("ab"));
    source.push(blob("cd"));
    expect(source.size).toBe(4);
    expect(source.bytes().type).toBe("audio/ogg;codecs=opus");
    expect(await source.bytes().text()).toBe("abcd");
    expect((await source.slice(0, 2)).value?.type).toBe("audio/ogg;codecs=opus");
  });

  test("cancel fails waiting and later slices; push after end throws", async () => {
    const source = new GrowingSource();
    const pending = source.slice(0, Infinity);
    source.cancel();
    await expect(pending).rejects.toBeInstanceOf(UploadError);
    await expect(source.slice(0, Infinity)).rejects.toMatchObject({ aborted: true });

    const ended = new GrowingSource();
    ended.end();
    expect(() => ended.push(blob("late"))).toThrow();
  });

  test("close (tus calls it on success) keeps the bytes", async () => {
    const source = new GrowingSource();
    source.push(blob("abc"));
    source.end();
    source.close();
    expect(await source.bytes().text()).toBe("abc");
  });
});

describe("helpers", () => {
  test("upload id from the Location URL", () => {
    expect(uploadIdFromUrl("/api/v1/uploads/u123")).toBe("u123");
    expect(uploadIdFromUrl("https://vox.example/api/v1/uploads/abc-DEF?x=1")).toBe("abc-DEF");
  });

  test("file extension from the recorder's mime type", () => {
    expect(extensionFor("audio/webm;codecs=opus")).toBe(".webm");
    expect(extensionFor("audio/ogg;codecs=opus")).toBe(".ogg");
    expect(extensionFor("audio/mp4")).toBe(".m4a");
    expect(extensionFor("")).toBe("");
  });
});
