// A message the server withdrew because its media could not be processed: the sender sees why,
// recipients no broken bubble.
import { describe, expect, test } from "vitest";
import type { Chat, Media, Message } from "../src/api/types";
import { mergeMessages, messageStatus, preview, withdrawnNote } from "../src/state/model";

const REASON = "the audio is longer than the limit of 0:02";

const media: Media = {
  id: "md1",
  kind: "voice",
  content_type: "audio/ogg; codecs=opus",
  size: 0,
  duration_ms: null,
  waveform: [],
  filename: "voice-message.ogg",
  created_at: "2026-11-29T10:00:00Z",
  state: "processing",
};

const posted: Message = {
  id: "m1",
  chat_id: "c1",
  client_id: "cid-1",
  sender: "alice",
  kind: "voice",
  text: null,
  media,
  reply_to: null,
  forwarded: false,
  view_once: false,
  deleted: false,
  created_at: "2026-11-29T10:00:01Z",
  receipts: { delivered: ["bob"], read: [], played: [] },
};

// What message.updated brings once processing failed.
const withdrawn: Message = { ...posted, deleted: true, media: null, withdrawn: { reason: REASON } };

const chat: Chat = {
  id: "c1",
  kind: "direct",
  title: null,
  members: [
    { handle: "alice", display_name: "Alice", role: "member" },
    { handle: "bob", display_name: "Bob", role: "member" },
  ],
  last_message: withdrawn,
  unread_count: 0,
  updated_at: "2026-11-29T10:00:01Z",
};

describe("a withdrawn message", () => {
  test("replaces the posted bubble when message.updated arrives", () => {
    const [m] = mergeMessages([posted], [withdrawn]);
    expect(m.media).toBeNull();
    expect(m.withdrawn?.reason).toBe(REASON);
  });

  test("tells its sender why, and shows as not sent", () => {
    expect(withdrawnNote(withdrawn, "alice")).toBe(`Your voice message could not be processed: ${REASON}`);
    expect(preview(withdrawn, "alice")).toBe(`Your voice message could not be processed: ${REASON}`);
    expect(messageStatus(withdrawn, chat, "alice")).toBe("Not sent");
  });

  test("is only 'withdrawn' for recipients", () => {
    expect(withdrawnNote(withdrawn, "bob")).toBe("This message was withdrawn");
    expect(preview(withdrawn, "bob")).toBe("This message was withdrawn");
  });

  test("other messages have no note", () => {
    expect(withdrawnNote(posted, "alice")).toBeNull();
    expect(withdrawnNote({ ...posted, deleted: true, media: null }, "bob")).toBeNull();
    expect(preview({ ...posted, deleted: true, media: null }, "bob")).toBe("This message was deleted");
  });
});
