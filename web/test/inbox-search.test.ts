import { describe, expect, test } from "vitest";
import type { Media, Message } from "../src/api/types";
import { silentRanges, skipTarget, SILENCE_KEEP_MS } from "../src/audio/silence";
import * as Q from "../src/audio/queue";
import { searchable, splitHighlights } from "../src/state/search";
import { describeMessage } from "../src/state/model";
import { parseRoute } from "../src/router";
import { message } from "./fixtures";

const LOUD = 180;
const QUIET = 20;
/** 64 bars: loud, except quiet over [from, to) bar indexes. */
function bars(...quiet: [number, number][]): number[] {
  return Array.from({ length: 64 }, (_, i) => (quiet.some(([a, b]) => i >= a && i < b) ? QUIET : LOUD));
}

describe("silentRanges", () => {
  test("a pause of 2 s or more is skipped, less its margins; a shorter one is kept", () => {
    // 64 s: one bar per second. Quiet bars 10..13 (3 s) and 30..31 (1 s).
    const s = silentRanges(bars([10, 13], [30, 31]), 64_000);
    expect(s).toEqual([{ start_ms: 10_000 + SILENCE_KEEP_MS, end_ms: 13_000 - SILENCE_KEEP_MS }]);
  });
  test("exactly 2 s counts; just under does not", () => {
    expect(silentRanges(bars([20, 22]), 64_000)).toHaveLength(1);
    expect(silentRanges(bars([20, 22]), 63_000)).toHaveLength(0); // 2 bars of 984 ms
  });
  test("leading silence is skipped from 0, trailing silence up to the end", () => {
    const s = silentRanges(bars([0, 4], [60, 64]), 32_000); // 500 ms a bar
    expect(s).toEqual([
      { start_ms: 0, end_ms: 2000 - SILENCE_KEEP_MS },
      { start_ms: 30_000 + SILENCE_KEEP_MS, end_ms: 32_000 },
    ]);
  });
  test("a message quiet throughout, or with no waveform or duration, skips nothing", () => {
    expect(silentRanges(new Array(64).fill(0), 60_000)).toEqual([]);
    expect(silentRanges(new Array(64).fill(QUIET), 60_000)).toEqual([]);
    expect(silentRanges([], 60_000)).toEqual([]);
    expect(silentRanges(bars([10, 20]), 0)).toEqual([]);
  });
  test("a quiet recording's pauses are judged against its own loudest bar", () => {
    // Speech peaks at 60 (a quiet phone), pauses at 10: below 40 % of 60.
    const quietTalk = Array.from({ length: 64 }, (_, i) => (i >= 32 && i < 40 ? 10 : 60));
    expect(silentRanges(quietTalk, 64_000)).toEqual([{ start_ms: 32_250, end_ms: 39_750 }]);
    // Room noise at 50 between words at 60 is not silence.
    expect(silentRanges(quietTalk.map((v) => (v === 10 ? 50 : v)), 64_000)).toEqual([]);
  });
});

describe("skipTarget", () => {
  const s = [
    { start_ms: 1000, end_ms: 4000 },
    { start_ms: 9000, end_ms: 12_000 },
  ];
  test("inside a silence: its end; elsewhere: null", () => {
    expect(skipTarget(s, 0)).toBeNull();
    expect(skipTarget(s, 1000)).toBe(4000);
    expect(skipTarget(s, 3999)).toBe(4000);
    expect(skipTarget(s, 4000)).toBeNull();
    expect(skipTarget(s, 10_500)).toBe(12_000);
    expect(skipTarget([], 500)).toBeNull();
  });
});

const media: Media = {
  id: "md",
  kind: "voice",
  content_type: "audio/ogg",
  size: 1,
  duration_ms: 2000,
  waveform: [],
  filename: "v.ogg",
  created_at: "2026-12-01T10:00:00Z",
  state: "ready",
};
const voice = (id: string, fields: Partial<Message> = {}): Message =>
  message(id, { kind: "voice", text: null, media, created_at: "2026-12-01T10:00:00Z", ...fields });

describe("the inbox queue", () => {
  test("keeps the server's order and only what can play", () => {
    const q = Q.makeQueue([
      voice("a"),
      voice("b", { deleted: true }),
      voice("c", { media: { ...media, state: "processing" } }),
      voice("d", { media: null }),
      voice("e", { kind: "text", media: null }),
      voice("f", { kind: "audio" }),
      voice("a"),
    ]);
    expect(q.items.map((m) => m.id)).toEqual(["a", "f"]);
    expect(Q.current(q)?.id).toBe("a");
  });
  test("next walks to the end and then is done; previous steps back, never before the first", () => {
    let q = Q.makeQueue([voice("a"), voice("b"), voice("c")]);
    expect(Q.progress(q)).toBe("1 of 3");
    expect(Q.current(Q.previous(q))?.id).toBe("a");
    q = Q.next(Q.next(q));
    expect([Q.current(q)?.id, Q.progress(q), Q.isDone(q)]).toEqual(["c", "3 of 3", false]);
    q = Q.next(q);
    expect([Q.current(q), Q.isDone(q)]).toEqual([null, true]);
    expect(Q.isDone(Q.next(q))).toBe(true);
    expect(Q.current(Q.previous(q))?.id).toBe("c");
    expect(Q.current(Q.previous(Q.previous(q)))?.id).toBe("b");
  });
  test("an empty inbox is done at once", () => {
    expect(Q.isDone(Q.makeQueue([]))).toBe(true);
    expect(Q.current(Q.EMPTY_QUEUE)).toBeNull();
  });
  test("the now-playing line names the sender (or an imported sender's name) and the chat", () => {
    const chats = [
      {
        id: "c1",
        kind: "group" as const,
        title: "Family",
        members: [
          { handle: "alice", display_name: "Alice", role: "member" as const },
          { handle: "bob", display_name: "Bob B.", role: "member" as const },
        ],
        last_message: null,
        unread_count: 0,
        updated_at: "",
      },
    ];
    expect(describeMessage(voice("a"), chats, "alice")).toEqual({ sender: "Bob B.", chat: "Family" });
    expect(describeMessage(voice("a", { sender: "alice", sender_name: "Grandpa" }), chats, "alice")).toEqual({
      sender: "Grandpa",
      chat: "Family",
    });
    expect(describeMessage(voice("a", { chat_id: "gone" }), chats, "alice")).toEqual({ sender: "bob", chat: "" });
  });
});

describe("splitHighlights", () => {
  const join = (p: { text: string }[]) => p.map((x) => x.text).join("");
  test("counts characters as the server does: an emoji is one", () => {
    // The server's ranges for "see 👍👍 you at Quillfeather Lane": "Quillfeather" is 14-26.
    const s = "see 👍👍 you at Quillfeather Lane";
    const pieces = splitHighlights(s, [[14, 26]]);
    expect(pieces.filter((p) => p.mark).map((p) => p.text)).toEqual(["Quillfeather"]);
    expect(join(pieces)).toBe(s);
  });
  test("marks the ranges and keeps the rest as plain text", () => {
    const pieces = splitHighlights("the quick brown fox", [
      [4, 9],
      [16, 19],
    ]);
    expect(pieces).toEqual([
      { text: "the ", mark: false },
      { text: "quick", mark: true },
      { text: " brown ", mark: false },
      { text: "fox", mark: true },
    ]);
  });
  test("unsorted, overlapping, touching and out-of-bounds ranges are clamped and merged", () => {
    const s = "abcdefghij";
    const pieces = splitHighlights(s, [
      [8, 20],
      [1, 3],
      [2, 5],
      [5, 6],
      [-4, 0],
      [7, 7],
    ]);
    expect(pieces).toEqual([
      { text: "a", mark: false },
      { text: "bcdef", mark: true },
      { text: "gh", mark: false },
      { text: "ij", mark: true },
    ]);
    expect(join(pieces)).toBe(s);
  });
  test("markup in a snippet stays text", () => {
    const s = "<b>hi</b> there";
    const pieces = splitHighlights(s, [[3, 5]]);
    expect(pieces[1]).toEqual({ text: "hi", mark: true });
    expect(join(pieces)).toBe(s);
  });
  test("no highlights: one plain piece; an empty snippet: nothing", () => {
    expect(splitHighlights("hello", [])).toEqual([{ text: "hello", mark: false }]);
    expect(splitHighlights("", [[0, 3]])).toEqual([]);
  });
  test("an empty or blank query is not sent", () => {
    expect(searchable("")).toBe(false);
    expect(searchable("   ")).toBe(false);
    expect(searchable(" fox ")).toBe(true);
  });
});

test("a chat opened at a message: /chats/{id}?m={message_id}", () => {
  expect(parseRoute("/chats/c1", "?m=m9")).toEqual({ name: "chat", chatId: "c1", messageId: "m9" });
  expect(parseRoute("/chats/c1", "")).toEqual({ name: "chat", chatId: "c1" });
});
