// Pure functions over the app's data: merging pages and events, statuses, previews. No DOM, no
// network; unit-tested with Vitest.
import type { Chat, Message, ReceiptEvent, Storage } from "../api/types";
import { L } from "../labels";

/** Messages sorted oldest first; ids are sortable (UUIDv7), pending sends go last. */
export function sortMessages(list: Message[]): Message[] {
  return [...list].sort((a, b) => {
    if (!!a.pending !== !!b.pending) return a.pending ? 1 : -1;
    return a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id < b.id ? -1 : 1;
  });
}

/**
 * Upsert `incoming` into `list`: the same id replaces, and a server message replaces the
 * pending send with its client_id. Applying the same message twice changes nothing.
 */
export function mergeMessages(list: Message[], incoming: Message[]): Message[] {
  const byId = new Map(list.map((m) => [m.id, m]));
  for (const m of incoming) {
    for (const [id, old] of byId) {
      if (old.pending && old.client_id === m.client_id && !m.pending) byId.delete(id);
    }
    const old = byId.get(m.id);
    // Receipts only grow; an older copy of a message must not take them back.
    byId.set(m.id, old && !old.pending ? { ...m, receipts: unionReceipts(old, m) } : m);
  }
  return sortMessages([...byId.values()]);
}

function unionReceipts(a: Message, b: Message): Message["receipts"] {
  const u = (x: string[], y: string[]) => [...new Set([...x, ...y])];
  return {
    delivered: u(a.receipts.delivered, b.receipts.delivered),
    read: u(a.receipts.read, b.receipts.read),
    played: u(a.receipts.played, b.receipts.played),
  };
}

export function applyReceipt(list: Message[], r: ReceiptEvent): Message[] {
  return list.map((m) => {
    if (m.id !== r.message_id) return m;
    const handles = r.handles?.length ? r.handles : [r.handle];
    const receipts = { ...m.receipts, [r.kind]: [...new Set([...m.receipts[r.kind], ...handles])] };
    // Played implies read implies delivered.
    if (r.kind !== "delivered") receipts.delivered = [...new Set([...receipts.delivered, ...handles])];
    if (r.kind === "played") receipts.read = [...new Set([...receipts.read, ...handles])];
    return { ...m, receipts };
  });
}

export type Status = "Sending" | "Not sent" | typeof L.sent | typeof L.delivered | typeof L.read | typeof L.played;

/** The status icon of one's own message: everyone else in the chat has reached the step. */
/** Sent by me: a message kept from elsewhere (an import, a backup) by someone not on this server is not. */
export const isMine = (m: Message, me: string | undefined): boolean => m.sender === me && !m.sender_name;

export function messageStatus(m: Message, chat: Chat | undefined, me: string): Status {
  if (m.pending === "sending") return "Sending";
  if (m.pending === "failed" || m.withdrawn) return "Not sent";
  const others = (chat?.members ?? []).map((x) => x.handle).filter((h) => h !== me);
  if (others.length === 0) return chat?.kind === "self" ? L.read : L.sent;
  const all = (handles: string[]) => others.every((h) => handles.includes(h));
  if (m.kind !== "text" && all(m.receipts.played)) return L.played;
  if (all(m.receipts.read)) return L.read;
  if (all(m.receipts.delivered)) return L.delivered;
  return L.sent;
}

/** A handle as typed ("@Alice ") as the server knows it ("alice"). */
export function normalizeHandle(typed: string): string {
  return typed.trim().toLowerCase().replace(/^@/, "");
}

/** Whether `me` may still post here: a former group member keeps the history, read-only. */
export function isMember(chat: Chat, me: string): boolean {
  return chat.kind !== "group" || chat.members.some((x) => x.handle === me);
}

export function chatTitle(chat: Chat, me: string): string {
  if (chat.kind === "self") return L.selfChat;
  if (chat.kind === "direct") {
    const other = chat.members.find((x) => x.handle !== me);
    return other?.display_name || other?.handle || chat.title || "Chat";
  }
  return chat.title || "Group";
}

/** A size for people: "950 bytes", "4.3 kB", "12 MB", "1.5 GB" (decimal units, as disks say). */
export function bytes(n: number): string {
  if (n < 1000) return `${n} bytes`;
  const units = ["kB", "MB", "GB", "TB"];
  let value = n / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** What Settings says of the user's storage (GET /me). */
export function storageLine(s: Storage): string {
  const used = s.quota_bytes === null ? `${bytes(s.used_bytes)} used` : `${bytes(s.used_bytes)} of ${bytes(s.quota_bytes)} used`;
  const drafts = s.open_uploads === 1 ? "1 unsent upload" : `${s.open_uploads} unsent uploads`;
  return `${used} · ${drafts} (at most ${s.open_uploads_max})`;
}

/** "m:ss" of a duration in seconds. */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/**
 * What the bubble of a message the server withdrew says (null for any other message): its
 * sender learns why; recipients only that it was taken back.
 */
export function withdrawnNote(m: Message, me: string): string | null {
  if (!m.withdrawn) return null;
  if (m.sender !== me) return "This message was withdrawn";
  const what = m.kind === "voice" ? "voice message" : "audio message";
  return `Your ${what} could not be processed: ${m.withdrawn.reason}`;
}

/** The chat list's line under the title: a voice message's duration (the view adds the mic). */
export function preview(m: Message | null, me: string): string {
  if (!m) return "";
  const who = isMine(m, me) ? "You: " : "";
  const withdrawn = withdrawnNote(m, me);
  if (withdrawn) return withdrawn;
  if (m.deleted) return "This message was deleted";
  if (m.kind === "voice") {
    return `${who}${m.media?.duration_ms != null ? clock(m.media.duration_ms / 1000) : "Voice message"}`;
  }
  if (m.kind === "audio") return `${who}${m.media?.filename ?? "Audio"}`;
  return who + (m.text ?? "");
}

export function sortChats(chats: Chat[]): Chat[] {
  const activity = (c: Chat) => (c.last_message?.created_at ?? c.updated_at) || "";
  return [...chats].sort((a, b) => (activity(a) < activity(b) ? 1 : activity(a) > activity(b) ? -1 : 0));
}

// Formatters are made once: toLocale*String with options builds a new one on every call, which
// was most of the time of rendering a long chat.
const TIME = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const DATE_LONG = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "long", year: "numeric" });
const DATE_SHORT = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric" });
const WEEKDAY = new Intl.DateTimeFormat(undefined, { weekday: "long" });

const startOfDay = (x: Date) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime();
const daysAgo = (d: Date, now: Date) => Math.round((startOfDay(now) - startOfDay(d)) / 86400000);

/** "Today", "Yesterday", or the date, for the day separators. */
export function dayLabel(iso: string, now = new Date()): string {
  const d = new Date(iso);
  const days = daysAgo(d, now);
  if (days === 0) return "Today";
  if (days === 1) return "Yesterday";
  return DATE_LONG.format(d);
}

export function timeLabel(iso: string): string {
  return TIME.format(new Date(iso));
}

/** The chat list's time: today's time, "Yesterday", a weekday this week, else the date. */
export function listTimeLabel(iso: string, now = new Date()): string {
  const d = new Date(iso);
  const days = daysAgo(d, now);
  if (days <= 0) return TIME.format(d);
  if (days === 1) return "Yesterday";
  if (days < 7) return WEEKDAY.format(d);
  return DATE_SHORT.format(d);
}

/** The next unplayed voice message from someone else after `afterId` in the chat, if any. */
export function nextUnplayed(list: Message[], afterId: string, me: string): Message | undefined {
  const i = list.findIndex((m) => m.id === afterId);
  return list
    .slice(i + 1)
    .find(
      (m) =>
        m.kind === "voice" && m.media && !m.deleted && !isMine(m, me) && !m.receipts.played.includes(me),
    );
}

/** Who sent a message (a display name, or the name kept with an imported one) and the chat's title. */
export function describeMessage(m: Message, chats: readonly Chat[], me: string): { sender: string; chat: string } {
  const chat = chats.find((c) => c.id === m.chat_id);
  const sender = isMine(m, me)
    ? "You"
    : (m.sender_name ?? chat?.members.find((x) => x.handle === m.sender)?.display_name ?? m.sender);
  return { sender, chat: chat ? chatTitle(chat, me) : "" };
}
