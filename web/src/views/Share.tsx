// "Send to…" (UI.md "Sharing in"): POST /share stored the shared files as uploads and sent us
// here with their ids; pick chats, send each file to each of them.
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api/http";
import type { OpenUpload } from "../api/types";
import { L } from "../labels";
import { isMember } from "../state/model";
import { sendMedia, useStore, type State } from "../state/store";
import { navigate } from "../router";
import { ChatCheckboxes } from "./ChatView";
import { Alert, errorText } from "./Dialog";
import { Icon } from "./Icon";

const all = (s: State) => s;

export function Share({ params }: { params: URLSearchParams }) {
  const s = useStore(all);
  const ids = (params.get("uploads") ?? "").split(",").filter(Boolean);
  const [files, setFiles] = useState<OpenUpload[] | null>(null);
  const [selected, setSelected] = useState(new Set<string>());
  const [error, setError] = useState(params.get("error") === "no_files" ? "Nothing to send: the share had no audio file." : "");
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    api.openUploads().then(
      ({ uploads }) => setFiles(ids.flatMap((id) => uploads.filter((u) => u.id === id))),
      (e) => setError(errorText(e)),
    );
  }, [params.get("uploads")]);

  function toggle(id: string) {
    const next = new Set(selected);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setSelected(next);
  }

  // A retry after a partial failure neither finishes an upload twice nor sends twice: each
  // file's media is kept, and each (file, chat) pair has its own client_id.
  const mediaOf = useRef(new Map<string, string>());
  async function send() {
    if (!files?.length || !selected.size) return;
    setBusy(true);
    setError("");
    try {
      for (const f of files) {
        let mediaId = mediaOf.current.get(f.id);
        if (!mediaId) {
          mediaId = (await api.finishUpload(f.id, "audio")).id;
          mediaOf.current.set(f.id, mediaId);
        }
        for (const chatId of selected) {
          await sendMedia(chatId, { kind: "audio", media_id: mediaId }, `share-${f.id}-${chatId}`);
        }
      }
      navigate(selected.size === 1 ? `/chats/${[...selected][0]}` : "/", true);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  }

  /** Nothing is sent: the shared files are not kept on the server either. */
  function cancel() {
    for (const f of files ?? []) {
      if (!mediaOf.current.has(f.id)) api.deleteUpload(f.id).catch(() => {});
    }
    navigate("/", true);
  }

  return (
    <main class="chatview page" aria-labelledby="share-title">
      <header class="bar chat-header">
        <h2 id="share-title">{L.sendTo}</h2>
      </header>
      <div class="page-body">
        {files === null ? (
          <p class="muted">Loading…</p>
        ) : files.length === 0 ? (
          <p class="muted">No shared files are waiting.</p>
        ) : (
          <ul class="files" aria-label="Shared files">
            {files.map((f) => (
              <li key={f.id}>
                <Icon name="music" size={18} /> {f.metadata.filename ?? "audio"}
              </li>
            ))}
          </ul>
        )}
        <h3 class="section">Choose chats</h3>
        <ChatCheckboxes me={s.me?.handle ?? ""} chats={s.chats.filter((c) => isMember(c, s.me?.handle ?? ""))} selected={selected} onToggle={toggle} />
        <Alert text={error} />
        <div class="row-end">
          <button type="button" onClick={cancel}>
            {L.cancel}
          </button>
          <button type="button" class="primary" disabled={busy || !files?.length || !selected.size} onClick={send}>
            {L.send}
          </button>
        </div>
      </div>
    </main>
  );
}
