// The one module that talks HTTP to the server. Views never call fetch: they call these.
// Auth is the HttpOnly session cookie, sent by the browser on same-origin requests; unsafe
// methods carry an Origin header by themselves, which the server checks (CSRF).
import type { Chat, Me, Media, Message, OpenUpload, SearchPage, Task, User } from "./types";

export const API = "/api/v1";

/** A refusal from the server (RFC 9457 problem JSON), or a network failure (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
  get network(): boolean {
    return this.status === 0;
  }
}

let onUnauthorized: () => void = () => {};
/** Called when the session has ended (401 on a request that needed it). */
export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

async function request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  let response: Response;
  try {
    response = await fetch(API + path, {
      method,
      credentials: "same-origin",
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (e) {
    if (signal?.aborted) throw e; // superseded (a newer search): not a network failure
    throw new ApiError(0, "network", "No connection to the server.");
  }
  if (response.ok) {
    return (response.status === 204 ? undefined : await response.json()) as T;
  }
  throw await problem(response);
}

/** A multipart POST of a file and form fields (restores and imports). */
async function upload(path: string, file: File, fields: Record<string, string>): Promise<Task> {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  form.append("file", file, file.name);
  let response: Response;
  try {
    response = await fetch(API + path, { method: "POST", credentials: "same-origin", body: form });
  } catch {
    throw new ApiError(0, "network", "No connection to the server.");
  }
  if (response.ok) return (await response.json()) as Task;
  throw await problem(response);
}

/** The problem JSON of a refused response, as an ApiError with the detail in words. */
export async function problem(response: Response): Promise<ApiError> {
  let code = "error";
  let detail = `${response.status} ${response.statusText}`;
  try {
    const p = await response.json();
    code = p.code ?? code;
    detail = p.detail || p.title || detail;
  } catch {
    // Not problem JSON (a proxy's page): keep the status line.
  }
  if (response.status === 401 && !response.url.includes("/auth/")) onUnauthorized();
  return new ApiError(response.status, code, detail);
}

const q = (params: Record<string, string | number | undefined>): string => {
  const entries = Object.entries(params).filter(([, v]) => v !== undefined && v !== "");
  return entries.length ? "?" + new URLSearchParams(entries.map(([k, v]) => [k, String(v)])) : "";
};

export type Registration = "open" | "invite" | "closed";

export const api = {
  authConfig: () => request<{ registration: Registration }>("GET", "/auth/config"),
  login: (handle: string, password: string) =>
    request<{ user: User }>("POST", "/auth/login?session=cookie", { handle, password }),
  register: (body: { handle: string; password: string; display_name?: string; invite?: string }) =>
    request<{ user: User }>("POST", "/auth/register?session=cookie", body),
  logout: () => request<void>("POST", "/auth/logout"),
  me: () => request<Me>("GET", "/me"),
  updateMe: (body: { transcribe?: boolean }) => request<Me>("PATCH", "/me", body),
  createInvite: () => request<{ code: string; expires_at: string }>("POST", "/invites"),

  chats: () => request<{ chats: Chat[] }>("GET", "/chats"),
  startDirect: (handle: string) => request<Chat>("POST", "/chats", { kind: "direct", handle }),
  createGroup: (title: string, handles: string[]) =>
    request<Chat>("POST", "/chats", { kind: "group", title, handles }),
  addMember: (chatId: string, handle: string) =>
    request<Chat>("POST", `/chats/${chatId}/members`, { handle }),
  removeMember: (chatId: string, handle: string) =>
    request<void>("DELETE", `/chats/${chatId}/members/${encodeURIComponent(handle)}`),

  messages: (chatId: string, page: { before?: string; after?: string; limit?: number }) =>
    request<{ messages: Message[]; has_more: boolean }>(
      "GET",
      `/chats/${chatId}/messages${q(page)}`,
    ),
  send: (
    chatId: string,
    body: {
      client_id: string;
      kind: Message["kind"];
      text?: string;
      media_id?: string;
      upload_id?: string;
      reply_to?: string;
      view_once?: boolean;
    },
  ) => request<Message>("POST", `/chats/${chatId}/messages`, body),
  message: (id: string) => request<Message>("GET", `/messages/${id}`),
  search: (
    params: { q: string; chat_id?: string; kind?: Message["kind"]; before?: string; limit?: number; offset?: number },
    signal?: AbortSignal,
  ) =>
    request<SearchPage>("GET", `/search${q(params)}`, undefined, signal),
  inbox: () => request<{ messages: Message[] }>("GET", "/inbox"),
  deleteMessage: (id: string, scope: "me" | "everyone") =>
    request<void>("DELETE", `/messages/${id}?scope=${scope}`),
  forward: (id: string, chatIds: string[]) =>
    request<{ messages: Message[] }>("POST", `/messages/${id}/forward`, { chat_ids: chatIds }),
  email: (id: string, to: string, note: string) =>
    request<{ to: string }>("POST", `/messages/${id}/email`, note ? { to, note } : { to }),
  star: (id: string) => request<void>("PUT", `/messages/${id}/star`),
  unstar: (id: string) => request<void>("DELETE", `/messages/${id}/star`),
  starred: () => request<{ messages: Message[] }>("GET", "/starred"),
  read: (chatId: string, upTo: string) =>
    request<void>("POST", `/chats/${chatId}/read`, { up_to: upTo }),
  played: (id: string) => request<void>("POST", `/messages/${id}/played`),

  openUploads: () => request<{ uploads: OpenUpload[] }>("GET", "/uploads?state=open"),
  deleteUpload: (id: string) => request<void>("DELETE", `/uploads/${id}`),
  finishUpload: (id: string, kind: "voice" | "audio") =>
    request<Media>("POST", `/uploads/${id}/finish`, { kind }),

  createBackup: (passphrase: string) => request<Task>("POST", "/backups", { passphrase }),
  restoreBackup: (file: File, passphrase: string) =>
    upload("/backups/restore", file, { passphrase }),
  importChat: (file: File, timezone: string, mapping: Record<string, string>) =>
    upload("/imports", file, { timezone, mapping: JSON.stringify(mapping) }),
  task: (kind: Task["kind"], id: string) =>
    request<Task>("GET", `${{ backup: "/backups", restore: "/backups/restore", import: "/imports" }[kind]}/${id}`),

  events: (after: number, timeout: number) =>
    request<{ events: unknown[]; seq: number; reset?: boolean }>(
      "GET",
      `/events${q({ after, timeout })}`,
    ),
};

export type MediaFormat = "original" | "ogg" | "mp3";
export const mediaUrl = (id: string, format: MediaFormat = "original"): string =>
  `${API}/media/${id}/content?format=${format}`;
/** A chat's export (a zip with its voice notes and a page that plays them offline). */
export const exportUrl = (chatId: string): string => `${API}/chats/${chatId}/export?media=true`;
/** A ready backup's file (age-encrypted). */
export const backupUrl = (id: string): string => `${API}/backups/${id}/download`;
/** The whole media in memory: a view-once message is loaded before it is marked played. */
export async function fetchMedia(id: string, format: MediaFormat): Promise<Blob> {
  let response: Response;
  try {
    response = await fetch(mediaUrl(id, format), { credentials: "same-origin" });
  } catch {
    throw new ApiError(0, "network", "No connection to the server.");
  }
  if (!response.ok) throw await problem(response);
  return response.blob();
}

export const uploadContentUrl = (id: string): string => `${API}/uploads/${id}/content`;
