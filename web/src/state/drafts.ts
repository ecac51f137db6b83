// Voice drafts: a recording streams into an open upload while it is made; sending posts it.
// The client_id is derived from the upload, so sending one draft twice (a retry, another
// device) gives one message.
import { api } from "../api/http";
import { sendMedia } from "./store";

export interface Draft {
  id: string;
  created_at: string;
}

let recordingUpload: string | null = null;
const changed = new Set<() => void>();

/** Called when drafts may have changed on the server (a recording was kept). */
export function onDraftsChanged(listener: () => void): () => void {
  changed.add(listener);
  return () => changed.delete(listener);
}
export function draftsChanged(): void {
  for (const l of changed) l();
}

/** The upload of the recording being made on this page: not offered as unsent. */
export function setCurrentRecordingUpload(id: string | null): void {
  recordingUpload = id;
}
export function currentRecordingUpload(): string | null {
  return recordingUpload;
}

export async function openDrafts(chatId: string): Promise<Draft[]> {
  const { uploads } = await api.openUploads();
  return uploads
    .filter((u) => u.metadata.chat_id === chatId && u.metadata.kind === "voice" && u.offset > 0)
    .map((u) => ({ id: u.id, created_at: u.created_at }));
}

export const draftClientId = (uploadId: string): string => `voice-${uploadId}`;

export async function sendDraft(chatId: string, uploadId: string, replyTo?: string, viewOnce = false): Promise<void> {
  await sendMedia(
    chatId,
    { kind: "voice", upload_id: uploadId, reply_to: replyTo, view_once: viewOnce || undefined },
    draftClientId(uploadId),
  );
}

export async function discardUpload(uploadId: string): Promise<void> {
  await api.deleteUpload(uploadId);
}
