// A recording left unsent (a closed tab, a dropped network) is on the server as an open upload;
// it is offered on return to its chat, on any device (UI.md "Unsent recording").
import { useEffect, useState } from "preact/hooks";
import { uploadContentUrl } from "../api/http";
import { L } from "../labels";
import {
  currentRecordingUpload,
  discardUpload,
  onDraftsChanged,
  openDrafts,
  sendDraft,
  type Draft,
} from "../state/drafts";
import { Alert, errorText } from "./Dialog";
import { Icon } from "./Icon";

export function UnsentRecordings({ chatId }: { chatId: string }) {
  const [drafts, setDrafts] = useState<Draft[]>([]);
  const [error, setError] = useState("");
  const [playing, setPlaying] = useState<HTMLAudioElement | null>(null);

  useEffect(() => {
    let live = true;
    const load = () =>
      openDrafts(chatId).then((d) => live && setDrafts(d.filter((x) => x.id !== currentRecordingUpload())), () => {});
    void load();
    const off = onDraftsChanged(load);
    return () => {
      live = false;
      off();
    };
  }, [chatId]);

  useEffect(() => () => playing?.pause(), [playing]);

  if (!drafts.length) return null;
  const draft = drafts[0];
  const remove = () => setDrafts(drafts.slice(1));
  const run = (f: () => Promise<void>) => f().then(remove, (e) => setError(errorText(e)));
  return (
    <section class="unsent" aria-label={L.unsentRecording}>
      <Icon name="mic" />
      <span>
        Unsent recording from {new Date(draft.created_at).toLocaleString()}
      </span>
      <button
        type="button"
        class="icon"
        aria-label={L.playUnsent}
        onClick={() => {
          playing?.pause();
          const a = new Audio(uploadContentUrl(draft.id));
          void a.play();
          setPlaying(a);
        }}
      >
        <Icon name="play" />
      </button>
      <button type="button" class="icon danger" aria-label={L.deleteUnsent} onClick={() => run(() => discardUpload(draft.id))}>
        <Icon name="trash" />
      </button>
      <button type="button" class="icon primary round" aria-label={L.sendUnsent} onClick={() => run(() => sendDraft(chatId, draft.id))}>
        <Icon name="send" />
      </button>
      <Alert text={error} />
    </section>
  );
}
