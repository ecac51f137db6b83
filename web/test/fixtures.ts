// Message views for tests, as the server sends them: a text from bob in chat c1 unless the
// fields given say otherwise.
import type { Message } from "../src/api/types";

export const message = (id: string, fields: Partial<Message> = {}): Message => ({
  id,
  chat_id: "c1",
  client_id: `cid-${id}`,
  sender: "bob",
  kind: "text",
  text: id,
  media: null,
  reply_to: null,
  forwarded: false,
  view_once: false,
  deleted: false,
  created_at: `2026-11-29T10:00:0${id.slice(-1)}Z`,
  receipts: { delivered: [], read: [], played: [] },
  ...fields,
});
