import { useEffect, useState } from "preact/hooks";
import { api } from "../api/http";
import type { Storage } from "../api/types";
import { L } from "../labels";
import { storageLine } from "../state/model";
import { createInvite, logOut, setTranscribe, useStore, type State } from "../state/store";
import { Alert, errorText } from "./Dialog";
import { navigate } from "../router";
import { Icon } from "./Icon";
import { Keeping } from "./Keeping";

const me = (s: State) => s.me;

export function Settings() {
  const user = useStore(me);
  const [invite, setInvite] = useState<{ code: string; expires_at: string } | null>(null);
  const [error, setError] = useState("");
  const [storage, setStorage] = useState<Storage | null>(null);
  useEffect(() => {
    api.me().then((fresh) => setStorage(fresh.storage ?? null), () => setStorage(null));
  }, []);
  return (
    <main class="chatview page" aria-label={L.settings}>
      <header class="bar chat-header">
        <button type="button" class="icon back" aria-label="Back to chats" onClick={() => navigate("/")}>
          <Icon name="back" />
        </button>
        <h2>{L.settings}</h2>
      </header>
      <div class="page-body">
        {user && (
          <p>
            Signed in as <strong>{user.display_name}</strong> <span class="muted">@{user.handle}</span>
          </p>
        )}
        {storage && <p class="muted">Storage: {storageLine(storage)}</p>}
        {user?.is_admin && (
          <section class="invite" aria-label="Invites">
            <h3 class="section">Invite someone</h3>
            <p class="muted">They enter the code when they create their account. It works once.</p>
            <button type="button" onClick={() => createInvite().then(setInvite, (e) => setError(errorText(e)))}>
              Create invite
            </button>
            {invite && (
              <p role="status">
                Invite code: <code class="code">{invite.code}</code>, valid until{" "}
                {new Date(invite.expires_at).toLocaleString()}
              </p>
            )}
            <Alert text={error} />
          </section>
        )}
        <Transcripts on={!!user?.transcribe} />
        <Keeping />
        <h3 class="section">Account</h3>
        <button type="button" class="danger" onClick={() => void logOut().then(() => navigate("/", true))}>
          {L.logOut}
        </button>
      </div>
    </main>
  );
}

/** The transcription of one's own voice messages (GET and PATCH /me `transcribe`). */
function Transcripts({ on }: { on: boolean }) {
  // Shown as ticked at once; put back if the server refuses.
  const [checked, setChecked] = useState(on);
  useEffect(() => setChecked(on), [on]);
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState("");
  async function change(e: Event) {
    const want = (e.currentTarget as HTMLInputElement).checked;
    setChecked(want);
    setSaving(true);
    setError("");
    try {
      await setTranscribe(want);
    } catch (err) {
      setChecked(!want);
      setError(errorText(err));
    } finally {
      setSaving(false);
    }
  }
  return (
    <>
      <h3 class="section">Transcripts</h3>
      <label>
        <input type="checkbox" checked={checked} disabled={saving} onChange={change} />
        {L.transcribeMine}
      </label>
      <p class="muted">
        Your voice messages get a written transcript, on this server, which the people you send them to can read and
        search.
      </p>
      <Alert text={error} />
    </>
  );
}
