import { describe, expect, test } from "vitest";
import type { Chat, Message, ReceiptEvent } from "../src/api/types";
import { applyReceipt, bytes, chatTitle, clock, mergeMessages, messageStatus, nextUnplayed, preview, sortChats, storageLine } from "../src/state/model";
import { parseRoute } from "../src/router";
import { backoffMs } from "../src/api/events";
import { nextSpeed, playableFormat } from "../src/audio/formats";
import { message } from "./fixtures";

const chat = (fields: Partial<Chat> = {}): Chat => ({
  id: "c1",
  kind: "direct",
  title: null,
  members: [
    { handle: "alice", display_name: "Alice", role: "member" },
    { handle: "bob", display_name: "Bob", role: "member" },
  ],
  last_message: null,
  unread_count: 0,
  updated_at: "2026-11-29T10:00:00Z",
  ...fields,
});

describe("mergeMessages", () => {
  test("applying the same messages twice changes nothing (resume overlap)", () => {
    const once = mergeMessages([], [message("m1"), message("m2")]);
    expect(mergeMessages(once, [message("m2"), message("m1")])).toEqual(once);
  });
  test("keeps oldest first whatever the arrival order", () => {
    expect(mergeMessages([message("m3")], [message("m1"), message("m2")]).map((m) => m.id)).toEqual(["m1", "m2", "m3"]);
  });
  test("the server's message replaces the optimistic one with its client_id", () => {
    const pending = message("pending-x", { client_id: "x", pending: "sending" });
    const merged = mergeMessages([message("m1"), pending], [message("m2", { client_id: "x" })]);
    expect(merged.map((m) => m.id)).toEqual(["m1", "m2"]);
  });
  test("an older copy does not take receipts back", () => {
    const read = message("m1", { receipts: { delivered: ["alice"], read: ["alice"], played: [] } });
    expect(mergeMessages([read], [message("m1")])[0].receipts.read).toEqual(["alice"]);
  });
});

describe("status", () => {
  const mine = (r: Partial<Message["receipts"]>, kind: Message["kind"] = "voice") =>
    message("m1", { sender: "alice", kind, receipts: { delivered: [], read: [], played: [], ...r } });
  test("sent, delivered, read, played", () => {
    expect(messageStatus(mine({}), chat(), "alice")).toBe("Sent");
    expect(messageStatus(mine({ delivered: ["bob"] }), chat(), "alice")).toBe("Delivered");
    expect(messageStatus(mine({ delivered: ["bob"], read: ["bob"] }), chat(), "alice")).toBe("Read");
    expect(messageStatus(mine({ played: ["bob"] }), chat(), "alice")).toBe("Played");
    expect(messageStatus(mine({ played: ["bob"] }, "text"), chat(), "alice")).not.toBe("Played");
  });
  test("a receipt event implies the earlier steps", () => {
    const [m] = applyReceipt([mine({})], {
      message_id: "m1",
      chat_id: "c1",
      handles: ["bob"],
      handle: "bob",
      kind: "played",
      at: "",
    });
    expect(m.receipts).toEqual({ delivered: ["bob"], read: ["bob"], played: ["bob"] });
  });
  test("a group's coalesced receipt records every handle it names", () => {
    const group = chat({
      kind: "group",
      title: "Family",
      members: ["alice", "bob", "carol", "dan"].map((handle) => ({ handle, display_name: handle, role: "member" as const })),
    });
    const receipt = (kind: "delivered" | "read", handles: string[]) => ({
      message_id: "m1",
      chat_id: "c1",
      handles,
      handle: handles[0],
      kind,
      at: "",
    });
    let list = applyReceipt([mine({}, "text")], receipt("delivered", ["bob", "carol"]));
    expect(list[0].receipts.delivered).toEqual(["bob", "carol"]);
    expect(messageStatus(list[0], group, "alice")).toBe("Sent");
    list = applyReceipt(list, receipt("delivered", ["carol", "dan"]));
    expect(list[0].receipts.delivered).toEqual(["bob", "carol", "dan"]);
    expect(messageStatus(list[0], group, "alice")).toBe("Delivered");
    list = applyReceipt(list, receipt("read", ["bob", "carol", "dan"]));
    expect(list[0].receipts.read).toEqual(["bob", "carol", "dan"]);
    expect(messageStatus(list[0], group, "alice")).toBe("Read");
    // Another message's receipt changes nothing here.
    expect(applyReceipt(list, { ...receipt("read", ["x"]), message_id: "m2" })).toEqual(list);
  });
  test("a receipt from a server without handles still counts its one handle", () => {
    const old = { message_id: "m1", chat_id: "c1", handle: "bob", kind: "read", at: "" } as unknown as ReceiptEvent;
    const [m] = applyReceipt([mine({})], old);
    expect(m.receipts).toEqual({ delivered: ["bob"], read: ["bob"], played: [] });
  });
  test("pending sends", () => {
    expect(messageStatus(message("p", { pending: "sending" }), chat(), "alice")).toBe("Sending");
  });
});

test("titles, previews and clock", () => {
  expect(chatTitle(chat(), "alice")).toBe("Bob");
  expect(chatTitle(chat({ kind: "self", members: [] }), "alice")).toBe("Message yourself");
  expect(chatTitle(chat({ kind: "group", title: "Family" }), "alice")).toBe("Family");
  const voice = message("m1", {
    kind: "voice",
    media: { id: "x", kind: "voice", content_type: "", size: 1, duration_ms: 65400, waveform: [], filename: "", created_at: "", state: "ready" },
  });
  expect(preview(voice, "alice")).toBe("1:05");
  expect(clock(0)).toBe("0:00");
  expect(clock(600.9)).toBe("10:00");
});

test("chats sort by newest activity", () => {
  const a = chat({ id: "a", updated_at: "2026-11-29T09:00:00Z" });
  const b = chat({ id: "b", updated_at: "2026-11-29T11:00:00Z" });
  const c = chat({ id: "c", last_message: message("m9") });
  expect(sortChats([a, c, b]).map((x) => x.id)).toEqual(["b", "c", "a"]);
});

test("the next unplayed voice message from someone else follows", () => {
  const media = { id: "x", kind: "voice" as const, content_type: "", size: 1, duration_ms: 1000, waveform: [], filename: "", created_at: "", state: "ready" as const };
  const list = [
    message("m1", { kind: "voice", media }),
    message("m2", { kind: "voice", media, sender: "alice" }),
    message("m3", { kind: "voice", media, receipts: { delivered: [], read: [], played: ["alice"] } }),
    message("m4", { kind: "voice", media }),
  ];
  expect(nextUnplayed(list, "m1", "alice")?.id).toBe("m4");
  expect(nextUnplayed(list, "m4", "alice")).toBeUndefined();
});

test("routes", () => {
  expect(parseRoute("/chats/abc")).toEqual({ name: "chat", chatId: "abc" });
  expect(parseRoute("/")).toEqual({ name: "home" });
  expect(parseRoute("/share", "?uploads=a,b").name).toBe("share");
  expect(parseRoute("/nope")).toEqual({ name: "home" });
});

test("reconnect backoff grows and is capped", () => {
  expect([1, 2, 3, 10].map(backoffMs)).toEqual([500, 1000, 2000, 15000]);
});

test("player: speeds cycle, mp3 where Ogg/Opus cannot play", () => {
  expect([1, 1.5, 2].map(nextSpeed)).toEqual([1.5, 2, 1]);
  expect(playableFormat(() => "")).toBe("mp3");
  expect(playableFormat(() => "probably")).toBe("ogg");
});

test("chat list times: today's time, Yesterday, a weekday, then the date", async () => {
  const { listTimeLabel, isMember } = await import("../src/state/model");
  const now = new Date(2026, 10, 29, 12, 0);
  expect(listTimeLabel(new Date(2026, 10, 29, 9, 5).toISOString(), now)).toMatch(/9|09/);
  expect(listTimeLabel(new Date(2026, 10, 28, 9, 5).toISOString(), now)).toBe("Yesterday");
  expect(listTimeLabel(new Date(2026, 10, 25, 9, 5).toISOString(), now)).not.toMatch(/:/);
  expect(listTimeLabel(new Date(2025, 10, 25, 9, 5).toISOString(), now)).toMatch(/2025/);
  expect(isMember(chat({ kind: "group", title: "G" }), "alice")).toBe(true);
  expect(isMember(chat({ kind: "group", title: "G", members: [] }), "alice")).toBe(false);
});

test("a waveform is one path with a bar per peak, never thinner than 3 units", async () => {
  const { wavePath } = await import("../src/audio/formats");
  const d = wavePath([0, 255, 128]);
  expect(d.match(/M/g)).toHaveLength(3);
  expect(d).toContain("M0 14.5h2v3h-2z"); // silence still shows a sliver
  expect(d).toContain("M3 0h2v32h-2z"); // the loudest fills the height
});

describe("storage in Settings", () => {
  test("says sizes the way disks do", () => {
    expect(bytes(950)).toBe("950 bytes");
    expect(bytes(4321)).toBe("4.3 kB");
    expect(bytes(12_345_678)).toBe("12 MB");
    expect(bytes(10 * 1024 ** 3)).toBe("11 GB");
  });
  test("names the quota, or its absence, and the unsent uploads", () => {
    const base = { used_bytes: 4321, open_uploads: 1, open_uploads_max: 20 };
    expect(storageLine({ ...base, quota_bytes: 100_000 })).toBe(
      "4.3 kB of 100 kB used · 1 unsent upload (at most 20)",
    );
    expect(storageLine({ ...base, quota_bytes: null, open_uploads: 3 })).toBe(
      "4.3 kB used · 3 unsent uploads (at most 20)",
    );
  });
});
