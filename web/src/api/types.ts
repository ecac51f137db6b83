// Shapes of the API's objects (../shared/API.md "Objects", plus docs/api.md additions).
export interface User {
  id: string;
  handle: string;
  display_name: string;
  created_at: string;
}
export interface Storage {
  used_bytes: number;
  quota_bytes: number | null;
  open_uploads: number;
  open_uploads_max: number;
}
export interface Me extends User {
  is_admin: boolean;
  /** Whether the server transcribes this user's voice messages (PATCH /me). */
  transcribe?: boolean;
  storage?: Storage; // what the server says now; a copy kept from before may lack it
}
export interface Member {
  handle: string;
  display_name: string;
  role: "admin" | "member";
}
export interface Media {
  id: string;
  kind: "voice" | "audio";
  content_type: string;
  size: number;
  duration_ms: number | null;
  waveform: number[];
  filename: string;
  created_at: string;
  state: "processing" | "ready" | "failed";
  error?: string | null;
}
export interface TranscriptWord {
  w: string;
  start_ms: number;
  end_ms: number;
}
export interface Transcript {
  state: "pending" | "ready" | "failed" | "off";
  text: string | null;
  language: string | null;
  words: TranscriptWord[];
  error: string | null;
}
export interface Receipts {
  delivered: string[];
  read: string[];
  played: string[];
}
export interface Message {
  id: string;
  chat_id: string;
  client_id: string;
  sender: string;
  kind: "text" | "voice" | "audio";
  text: string | null;
  media: Media | null;
  reply_to: string | null;
  forwarded: boolean;
  view_once: boolean;
  deleted: boolean;
  created_at: string;
  receipts: Receipts;
  /** Set (with `deleted`) when the server took the message back: its media could not be processed. */
  withdrawn?: { reason: string } | null;
  /** Kept from elsewhere (an import or a restored backup). */
  imported?: "whatsapp" | "telegram" | "backup" | null;
  /** The name of a kept message's sender who is not a user here (`sender` is then the user who kept it). */
  sender_name?: string | null;
  /** Voice and audio only (null for texts; absent in copies saved before transcripts existed). */
  transcript?: Transcript | null;
  /** Client-side only: a send not yet answered by the server, or refused by it. */
  pending?: "sending" | "failed";
  error?: string;
}
export interface Chat {
  id: string;
  kind: "direct" | "group" | "self";
  title: string | null;
  members: Member[];
  last_message: Message | null;
  unread_count: number;
  updated_at: string;
}
export interface OpenUpload {
  id: string;
  offset: number;
  length: number | null;
  metadata: Record<string, string>;
  created_at: string;
}
export interface ReceiptEvent {
  message_id: string;
  chat_id: string;
  handles: string[];
  handle: string;
  kind: "delivered" | "read" | "played";
  at: string;
}
export interface Presence {
  chat_id: string;
  handle: string;
  state: "typing" | "recording" | "idle";
}
export type ServerEvent =
  | { seq: number; type: "message.created" | "message.updated"; data: Message }
  | { seq: number; type: "receipt"; data: ReceiptEvent }
  | { seq: number; type: "chat.created" | "chat.updated"; data: Chat }
  | { seq: number; type: "member.removed"; data: { chat_id: string; handle: string } }
  | { seq: number; type: "media.ready" | "media.failed"; data: Media };

/** One hit of GET /search. `snippet` is plain text; `highlights` are [start, end) offsets in it. */
export interface SearchResult {
  message_id: string;
  chat_id: string;
  kind: Message["kind"];
  sender: string;
  snippet: string;
  highlights: [number, number][];
  /** Where the matched words start in a voice or audio message's transcript. */
  offset_ms: number | null;
  created_at: string;
}
export interface SearchPage {
  results: SearchResult[];
  has_more: boolean;
}

/** A backup, restore or import running on the server (GET /backups/{id} and the like). */
export interface Task {
  id: string;
  kind: "backup" | "restore" | "import";
  state: "running" | "ready" | "failed";
  progress: number;
  error: string | null;
  size: number | null;
  chat_id: string | null;
  counts: Record<string, number>;
  skipped: { line: number; reason: string }[];
}
