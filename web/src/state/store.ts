// The app's state and the actions that change it. Views read the state through useStore and
// call actions; only this module (through api/) talks to the server.
import { useEffect, useState } from "preact/hooks";
import { EventStream, type Connection } from "../api/events";
import { api, ApiError, setUnauthorizedHandler } from "../api/http";
import type { Chat, Me, Message, Presence, ServerEvent } from "../api/types";
import * as cache from "./cache";
import { applyReceipt, isMember, mergeMessages, normalizeHandle, sortChats } from "./model";

export interface State {
  auth: "checking" | "out" | "in";
  me: Me | null;
  connection: Connection;
  online: boolean;
  chats: Chat[];
  messages: Record<string, Message[]>;
  hasMore: Record<string, boolean>;
  /** chat id → handle → presence state (ephemeral; expires) */
  presence: Record<string, Record<string, Presence["state"]>>;
  seq: number;
  /** Starred messages, newest first (GET /starred). */
  starred: Message[];
}

let state: State = {
  auth: "checking",
  me: null,
  connection: "connecting",
  online: navigator.onLine,
  chats: [],
  messages: {},
  hasMore: {},
  presence: {},
  seq: 0,
  starred: [],
};
const listeners = new Set<() => void>();

export function getState(): State {
  return state;
}

function set(patch: Partial<State>): void {
  state = { ...state, ...patch };
  for (const l of listeners) l();
  persistSoon();
}

export function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Re-render when the selected slice changes (compared by identity). */
export function useStore<T>(select: (s: State) => T): T {
  const [value, setValue] = useState(() => select(state));
  useEffect(() => {
    const check = () => setValue(() => select(state));
    check();
    return subscribe(check);
  }, [select]);
  return value;
}

/** Text sends not yet answered by the server; kept across reloads, retried with their client_id. */
interface Outgoing {
  chatId: string;
  body: Parameters<typeof api.send>[1];
}
const outbox = new Map<string, Outgoing>();

// ---- persistence (offline) ----
const KEEP_PER_CHAT = 200;
let persistTimer: ReturnType<typeof setTimeout> | undefined;
function persistSoon(): void {
  if (state.auth !== "in" || persistTimer) return;
  persistTimer = setTimeout(persistNow, 100);
}

function persistNow(): Promise<void> {
  clearTimeout(persistTimer);
  persistTimer = undefined;
  if (state.auth !== "in") return Promise.resolve();
  const messages: Record<string, Message[]> = {};
  for (const [id, list] of Object.entries(state.messages)) messages[id] = list.slice(-KEEP_PER_CHAT);
  return cache.save({
    me: state.me,
    chats: state.chats,
    messages,
    seq: state.seq,
    starred: state.starred,
    outbox: [...outbox.values()],
  });
}

// ---- session ----
/**
 * Where a device with nothing saved resumes: past any log's end, so the server answers with a
 * reset at its latest seq instead of replaying the account's whole history (the chats and
 * messages are then loaded page by page, as they are opened).
 */
const START_AT_END = Number.MAX_SAFE_INTEGER;

/**
 * Events applied while a snapshot (the chat list, the open chat's messages) is being fetched.
 * The snapshot may have been taken before them, so they are applied again on top of it once it
 * is swapped in (applying an event twice changes nothing).
 */
const sinceSnapshot = new Set<ServerEvent[]>();

async function withSnapshot(swapIn: () => Promise<void>): Promise<void> {
  const missed: ServerEvent[] = [];
  sinceSnapshot.add(missed);
  try {
    await swapIn();
  } finally {
    sinceSnapshot.delete(missed);
    for (const e of missed) applyEvent(e);
  }
}

const stream = new EventStream({
  lastSeq: () => state.seq || START_AT_END,
  apply: (e) => {
    for (const missed of sinceSnapshot) missed.push(e);
    applyEvent(e);
  },
  presence: (p) => setPresence(p),
  reset: (seq) => void reload(seq),
  ready: (seq) => {
    set({ seq: Math.max(state.seq, seq) });
    void refreshChats();
    void flushOutbox();
  },
  connection: (c) => set({ connection: c }),
  refused: () => void signedOut(),
});

export async function boot(): Promise<void> {
  setUnauthorizedHandler(() => void signedOut());
  window.addEventListener("online", () => {
    set({ online: true });
    stream.kick();
  });
  window.addEventListener("offline", () => set({ online: false }));
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") stream.kick();
    else void persistNow();
  });
  window.addEventListener("pagehide", () => void persistNow());
  const [me, chats, messages, seq] = await Promise.all([
    cache.load<Me>("me"),
    cache.load<Chat[]>("chats"),
    cache.load<Record<string, Message[]>>("messages"),
    cache.load<number>("seq"),
  ]);
  const starred = (await cache.load<Message[]>("starred")) ?? [];
  for (const out of (await cache.load<Outgoing[]>("outbox")) ?? []) outbox.set(out.body.client_id, out);
  try {
    const fresh = await api.me();
    const switched = me && me.id !== fresh.id;
    if (switched) {
      await cache.clear();
      outbox.clear();
    }
    set({
      me: fresh,
      auth: "in",
      chats: switched ? [] : (chats ?? []),
      messages: switched ? {} : (messages ?? {}),
      seq: switched ? 0 : (seq ?? 0),
      starred: switched ? [] : starred,
    });
    await startSession();
  } catch (e) {
    if (e instanceof ApiError && e.network && me) {
      // Offline with a saved session: show what we have, connect when the network returns.
      set({ me, auth: "in", chats: chats ?? [], messages: messages ?? {}, seq: seq ?? 0, starred });
      set({ connection: "offline" });
      stream.start();
    } else {
      set({ auth: "out", me: null });
    }
  }
}

async function startSession(): Promise<void> {
  await refreshChats();
  void loadStarred();
  stream.start();
}

async function signedOut(): Promise<void> {
  stream.stop();
  outbox.clear();
  clearTimeout(persistTimer);
  persistTimer = undefined;
  // Out first, so that no save still pending writes this account's data back after the clear.
  set({ auth: "out", me: null, chats: [], messages: {}, hasMore: {}, seq: 0, presence: {}, starred: [] });
  for (const l of signOutListeners) l();
  await cache.clear();
}

const signOutListeners = new Set<() => void>();
/** Run when the session ends (log out, or refused by the server): e.g. stop playback. */
export function onSignOut(listener: () => void): void {
  signOutListeners.add(listener);
}

export async function logIn(handle: string, password: string): Promise<void> {
  await api.login(handle, password);
  await cache.clear();
  set({ me: await api.me(), auth: "in", chats: [], messages: {}, seq: 0 });
  await startSession();
}

export async function register(body: {
  handle: string;
  password: string;
  display_name?: string;
  invite?: string;
}): Promise<void> {
  await api.register(body);
  await cache.clear();
  set({ me: await api.me(), auth: "in", chats: [], messages: {}, seq: 0 });
  await startSession();
}

export const createInvite = (): Promise<{ code: string; expires_at: string }> => api.createInvite();

export async function logOut(): Promise<void> {
  try {
    await api.logout();
  } finally {
    await signedOut();
  }
}

/**
 * The server's log was reset (a restored server, or a new device starting at the log's end):
 * what we hold is replaced by what the server has now. Fetched first, then swapped in one
 * step, so the open chat does not blink; unsent messages stay.
 */
async function reload(seq: number): Promise<void> {
  set({ seq });
  const open = openChatId;
  await withSnapshot(async () => {
    try {
      const [{ chats }, page] = await Promise.all([
        api.chats(),
        open ? api.messages(open, { limit: 50 }) : Promise.resolve(null),
      ]);
      const unsent = open ? (state.messages[open] ?? []).filter((m) => m.pending) : [];
      set({
        chats: sortChats(chats),
        messages: open && page ? { [open]: mergeMessages(unsent, page.messages) } : {},
        hasMore: open && page ? { [open]: page.has_more } : {},
      });
      void flushOutbox();
    } catch {
      // offline again: the next ready reloads
    }
  });
}

export async function loadStarred(): Promise<void> {
  try {
    set({ starred: (await api.starred()).messages });
  } catch {
    // offline: keep what we have
  }
}

export async function starMessage(m: Message, star: boolean): Promise<void> {
  await (star ? api.star(m.id) : api.unstar(m.id));
  const rest = state.starred.filter((x) => x.id !== m.id);
  set({ starred: star ? [m, ...rest] : rest });
}

export async function refreshChats(): Promise<void> {
  await withSnapshot(async () => {
    try {
      const { chats } = await api.chats();
      set({ chats: sortChats(chats) });
    } catch {
      // offline: keep what we have
    }
  });
}

// ---- events ----
function upsertChat(chat: Chat): void {
  const old = state.chats.find((c) => c.id === chat.id);
  const merged = old ? { ...old, ...chat } : chat;
  set({ chats: sortChats([...state.chats.filter((c) => c.id !== chat.id), merged]) });
}

function applyEvent(e: ServerEvent): void {
  switch (e.type) {
    case "message.created":
    case "message.updated": {
      const m = e.data;
      // Chats whose messages were never loaded get them when opened.
      if (state.messages[m.chat_id]) addMessages(m.chat_id, [m]);
      const chat = state.chats.find((c) => c.id === m.chat_id);
      if (!chat) {
        void refreshChats();
      } else if (!chat.last_message || chat.last_message.created_at <= m.created_at) {
        const mine = m.sender === state.me?.handle;
        const fresh = e.type === "message.created" && chat.last_message?.id !== m.id;
        const unread = fresh && !mine && !isOpen(chat.id) ? chat.unread_count + 1 : chat.unread_count;
        upsertChat({ ...chat, last_message: m, unread_count: unread, updated_at: m.created_at });
      }
      if (e.type === "message.created") clearPresence(m.chat_id, m.sender);
      break;
    }
    case "receipt":
      if (state.messages[e.data.chat_id]) {
        set({
          messages: {
            ...state.messages,
            [e.data.chat_id]: applyReceipt(state.messages[e.data.chat_id], e.data),
          },
        });
      }
      break;
    case "chat.created":
    case "chat.updated":
      upsertChat(e.data);
      break;
    case "member.removed": {
      const chat = state.chats.find((c) => c.id === e.data.chat_id);
      if (!chat) break;
      upsertChat({ ...chat, members: chat.members.filter((x) => x.handle !== e.data.handle) });
      break;
    }
    case "media.ready":
    case "media.failed":
      for (const [chatId, list] of Object.entries(state.messages)) {
        if (list.some((m) => m.media?.id === e.data.id)) {
          set({
            messages: {
              ...state.messages,
              [chatId]: list.map((m) => (m.media?.id === e.data.id ? { ...m, media: e.data } : m)),
            },
          });
        }
      }
      break;
  }
  set({ seq: Math.max(state.seq, e.seq) });
}

const presenceTimers = new Map<string, ReturnType<typeof setTimeout>>();
function setPresence(p: Presence): void {
  if (p.handle === state.me?.handle) return;
  const key = `${p.chat_id}/${p.handle}`;
  clearTimeout(presenceTimers.get(key));
  if (p.state === "idle") {
    clearPresence(p.chat_id, p.handle);
    return;
  }
  set({ presence: { ...state.presence, [p.chat_id]: { ...state.presence[p.chat_id], [p.handle]: p.state } } });
  // Presence is refreshed every few seconds while it lasts; silence means it ended.
  presenceTimers.set(key, setTimeout(() => clearPresence(p.chat_id, p.handle), 8000));
}

function clearPresence(chatId: string, handle: string): void {
  const inChat = state.presence[chatId];
  if (!inChat || !(handle in inChat)) return;
  const { [handle]: _gone, ...rest } = inChat;
  set({ presence: { ...state.presence, [chatId]: rest } });
}

export function sendPresence(chatId: string, s: Presence["state"]): void {
  stream.sendPresence(chatId, s);
}

// ---- chats and messages ----
let openChatId: string | null = null;
const isOpen = (chatId: string) => openChatId === chatId && document.visibilityState === "visible";

export function setOpenChat(chatId: string | null): void {
  openChatId = chatId;
}

function addMessages(chatId: string, list: Message[]): void {
  set({ messages: { ...state.messages, [chatId]: mergeMessages(state.messages[chatId] ?? [], list) } });
}

/** Load the newest page (on open) or the page before the oldest we have (scrolling up). */
export async function loadMessages(chatId: string, older = false, limit = 50): Promise<void> {
  const have = (state.messages[chatId] ?? []).filter((m) => !m.pending);
  const before = older && have.length ? have[0].id : undefined;
  const page = await api.messages(chatId, { before, limit });
  addMessages(chatId, page.messages);
  if (older || have.length === 0 || !state.hasMore[chatId]) {
    set({ hasMore: { ...state.hasMore, [chatId]: page.has_more } });
  }
  await persistNow(); // what was just read is there offline, even after a reload right away
}

/**
 * Load pages back until the message `id` is among the chat's loaded messages, or the chat's
 * first message is (a search hit or a starred message may be older than the newest page). The
 * loaded messages stay one unbroken run, so scrolling and new messages work as before.
 * Resolves whether the message is there.
 */
export async function loadUntil(chatId: string, id: string): Promise<boolean> {
  const MAX_PAGES = 50; // 10,000 messages back; a message further than that is not worth the wait
  for (let page = 0; ; page += 1) {
    const list = state.messages[chatId] ?? [];
    if (list.some((m) => m.id === id)) return true;
    const loaded = list.some((m) => !m.pending);
    if ((loaded && state.hasMore[chatId] === false) || page >= MAX_PAGES) return false;
    await loadMessages(chatId, loaded, 200);
  }
}

export async function markRead(chatId: string): Promise<void> {
  const me = state.me?.handle;
  const list = state.messages[chatId] ?? [];
  const last = [...list].reverse().find((m) => !m.pending && m.sender !== me);
  const chat = state.chats.find((c) => c.id === chatId);
  if (!chat || !isMember(chat, me ?? "")) return;
  if (chat.unread_count > 0 || (last && !last.receipts.read.includes(me ?? ""))) {
    if (!last) return;
    upsertChat({ ...chat, unread_count: 0 });
    try {
      await api.read(chatId, last.id);
    } catch {
      // retried on the next open
    }
  }
}

// ---- sending, with an outbox that survives going offline ----
let flushing = false;

export function newClientId(): string {
  return crypto.randomUUID();
}

/** Show the message at once; send it now or when the connection returns (same client_id). */
export async function sendText(chatId: string, text: string, replyTo?: string): Promise<void> {
  const clientId = newClientId();
  const body = { client_id: clientId, kind: "text" as const, text, reply_to: replyTo };
  addMessages(chatId, [optimistic(chatId, clientId, { text, reply_to: replyTo ?? null })]);
  outbox.set(clientId, { chatId, body });
  persistSoon();
  await flushOutbox();
}

function optimistic(chatId: string, clientId: string, fields: Partial<Message>): Message {
  return {
    id: `pending-${clientId}`,
    chat_id: chatId,
    client_id: clientId,
    sender: state.me?.handle ?? "",
    kind: "text",
    text: null,
    media: null,
    reply_to: null,
    forwarded: false,
    view_once: false,
    deleted: false,
    created_at: new Date().toISOString(),
    receipts: { delivered: [], read: [], played: [] },
    pending: "sending",
    ...fields,
  };
}

/**
 * Send what the outbox holds, in order, until it is empty or the network is down (then the
 * next `ready` or a manual retry sends the rest, with the same client_ids). A send added while
 * this runs is picked up by the same run. A refusal marks that message "Not sent".
 */
export async function flushOutbox(): Promise<void> {
  if (flushing) return;
  flushing = true;
  try {
    for (;;) {
      const next = [...outbox].find(([id]) => !failedSends.has(id));
      if (!next) break;
      const [clientId, out] = next;
      try {
        const m = await api.send(out.chatId, out.body);
        outbox.delete(clientId);
        addMessages(out.chatId, [m]);
        persistSoon();
      } catch (e) {
        if (e instanceof ApiError && (e.network || e.status >= 500 || e.status === 429)) {
          // Not the message's fault: try again soon (and at the next reconnect).
          clearTimeout(outboxRetry);
          outboxRetry = setTimeout(() => void flushOutbox(), OUTBOX_RETRY_MS);
          break;
        }
        failedSends.add(clientId);
        markFailed(out.chatId, clientId, e instanceof Error ? e.message : String(e));
      }
    }
  } finally {
    flushing = false;
  }
}

const OUTBOX_RETRY_MS = 5000;
let outboxRetry: ReturnType<typeof setTimeout> | undefined;

/** Sends the server refused: kept (and shown "Not sent") until retried or removed. */
const failedSends = new Set<string>();

export function retrySend(m: Message): void {
  failedSends.delete(m.client_id);
  const list = state.messages[m.chat_id] ?? [];
  set({
    messages: {
      ...state.messages,
      [m.chat_id]: list.map((x) => (x.id === m.id ? { ...x, pending: "sending", error: undefined } : x)),
    },
  });
  void flushOutbox();
}

/** Drop an unsent message from this device (it never reached the server). */
export function removeUnsent(m: Message): void {
  outbox.delete(m.client_id);
  failedSends.delete(m.client_id);
  const list = state.messages[m.chat_id] ?? [];
  set({ messages: { ...state.messages, [m.chat_id]: list.filter((x) => x.id !== m.id) } });
}

function markFailed(chatId: string, clientId: string, error: string): void {
  const list = state.messages[chatId] ?? [];
  set({
    messages: {
      ...state.messages,
      [chatId]: list.map((m) => (m.client_id === clientId && m.pending ? { ...m, pending: "failed", error } : m)),
    },
  });
}

/** Post a finished upload or existing media as a message; resolves with the server's message. */
export async function sendMedia(
  chatId: string,
  body: Omit<Parameters<typeof api.send>[1], "client_id">,
  clientId = newClientId(),
): Promise<Message> {
  const m = await api.send(chatId, { ...body, client_id: clientId });
  addMessages(chatId, [m]);
  return m;
}

export async function deleteMessage(m: Message, scope: "me" | "everyone"): Promise<void> {
  await api.deleteMessage(m.id, scope);
  const list = state.messages[m.chat_id] ?? [];
  set({
    messages: {
      ...state.messages,
      [m.chat_id]:
        scope === "me"
          ? list.filter((x) => x.id !== m.id)
          : list.map((x) => (x.id === m.id ? { ...x, deleted: true, text: null, media: null } : x)),
    },
  });
}

export async function forward(m: Message, chatIds: string[]): Promise<void> {
  const { messages } = await api.forward(m.id, chatIds);
  for (const x of messages) addMessages(x.chat_id, [x]);
}

export async function startDirect(handle: string): Promise<Chat> {
  const chat = await api.startDirect(normalizeHandle(handle));
  upsertChat(chat);
  return chat;
}

export async function createGroup(title: string, handles: string[]): Promise<Chat> {
  const chat = await api.createGroup(title, handles.map(normalizeHandle));
  upsertChat(chat);
  return chat;
}

export async function addMember(chatId: string, handle: string): Promise<void> {
  upsertChat(await api.addMember(chatId, normalizeHandle(handle)));
}

export async function removeMember(chatId: string, handle: string): Promise<void> {
  await api.removeMember(chatId, handle);
  const chat = state.chats.find((c) => c.id === chatId);
  if (chat) {
    upsertChat({ ...chat, members: chat.members.filter((x) => x.handle !== handle) });
  }
}

/** Playing someone else's voice or audio message marks it played (their "Played" status). */
/** Turn the transcription of one's own voice messages on or off (PATCH /me). */
export async function setTranscribe(on: boolean): Promise<void> {
  const me = await api.updateMe({ transcribe: on });
  set({ me: { ...state.me, ...me } });
}

/** The message of a search hit: from the loaded ones, else from the server. */
export async function findMessage(chatId: string, id: string): Promise<Message> {
  return (state.messages[chatId] ?? []).find((m) => m.id === id) ?? (await api.message(id));
}

export function markPlayed(m: Message): void {
  const me = state.me?.handle;
  if (!me || m.sender === me || m.receipts.played.includes(me)) return;
  api.played(m.id).catch(() => {});
  const list = state.messages[m.chat_id] ?? [];
  set({
    messages: {
      ...state.messages,
      [m.chat_id]: list.map((x) =>
        x.id === m.id ? { ...x, receipts: { ...x.receipts, played: [...x.receipts.played, me] } } : x,
      ),
    },
  });
}
